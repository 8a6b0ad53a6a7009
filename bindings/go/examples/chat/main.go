// Command chat talks with a Gemma 3n model through the gemfa Go bindings.
//
//	chat -m MODEL_DIR               interactive: one conversation, a line per turn
//	chat -m MODEL_DIR -p "سلام"     one answer, streamed, then exit
//
// Ctrl-C stops an answer in the middle (through context cancellation); a
// second Ctrl-C at the prompt exits.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/libgemfa/libgemfa/bindings/go/gemfa"
)

func main() {
	modelDir := flag.String("m", "", "Hugging Face Gemma 3n directory (required)")
	prompt := flag.String("p", "", "answer this and exit")
	system := flag.String("s", "", "system prompt")
	weights := flag.String("w", "auto", "weights: auto|f32|f16|bf16|int8")
	threads := flag.Int("t", 0, "threads (0 = all cores)")
	maxCtx := flag.Int("c", 4096, "tokens the chat may hold")
	maxNew := flag.Int("n", 512, "max new tokens per answer")
	temp := flag.Float64("temperature", -1, "sampling temperature (default: the model's)")
	seed := flag.Uint64("seed", 0, "sampling seed")
	flag.Parse()
	if *modelDir == "" {
		flag.Usage()
		os.Exit(2)
	}
	wt, err := gemfa.ParseWeightType(*weights)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	if err := run(*modelDir, wt, *threads, *maxCtx, *maxNew, *temp, *seed, *system, *prompt); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(dir string, wt gemfa.WeightType, threads, maxCtx, maxNew int, temp float64, seed uint64, system, prompt string) error {
	m, err := gemfa.Load(dir, &gemfa.LoadOptions{Weights: wt})
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := m.NewSession(&gemfa.SessionOptions{MaxContext: maxCtx, Threads: threads})
	if err != nil {
		return err
	}
	defer s.Close()
	opts := []gemfa.SamplerOption{gemfa.Seed(seed)}
	if temp >= 0 {
		opts = append(opts, gemfa.Temperature(float32(temp)))
	}
	smp, err := gemfa.NewSampler(m, opts...)
	if err != nil {
		return err
	}
	defer smp.Close()

	first := true
	answer := func(text string) error {
		msgs := []gemfa.Message{{Role: "user", Content: text}}
		if first && system != "" {
			msgs = append([]gemfa.Message{{Role: "system", Content: system}}, msgs...)
		}
		first = false
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		_, err := s.Generate(ctx, gemfa.Chat(msgs...), &gemfa.GenerateOptions{MaxNewTokens: maxNew, Sampler: smp},
			func(piece string) error {
				fmt.Print(piece)
				return nil
			})
		if errors.Is(err, context.Canceled) {
			fmt.Print(" [stopped]")
			err = nil
		}
		fmt.Println()
		return err
	}
	if prompt != "" {
		return answer(prompt)
	}
	in := bufio.NewScanner(os.Stdin)
	for {
		fmt.Print("> ")
		if !in.Scan() {
			fmt.Println()
			return in.Err()
		}
		if line := strings.TrimSpace(in.Text()); line != "" {
			if err := answer(line); err != nil {
				return err
			}
		}
	}
}
