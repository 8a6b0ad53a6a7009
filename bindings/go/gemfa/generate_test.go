package gemfa

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

type greedyRef struct {
	PromptIDs []int32 `json:"prompt_ids"`
	IDs       []int32 `json:"ids"`
}

func chat01(t *testing.T) (greedyRef, []Message, string) {
	var ref greedyRef
	readJSON(t, filepath.Join(dataDir(t), "greedy", "chat-01.greedy.json"), &ref)
	for _, r := range readJSONL(t, "tiny.chat.expected.jsonl") {
		var id, rendered string
		var msgs []Message
		field(t, r, "id", &id)
		if id != "chat-01-user-gen" {
			continue
		}
		field(t, r, "messages", &msgs)
		field(t, r, "rendered", &rendered)
		return ref, msgs, rendered
	}
	t.Fatal("chat-01-user-gen not found")
	return ref, nil, ""
}

func TestGenerateGreedyChain(t *testing.T) {
	m := tinyModel(t)
	ref, msgs, _ := chat01(t)
	for _, id := range ref.IDs {
		if m.IsEOG(id) {
			t.Fatal("the reference chain contains an end id")
		}
	}
	s, err := m.NewSession(&SessionOptions{MaxContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pieces []string
	res, err := s.Generate(context.Background(), UserMessage(msgs[0].Content), &GenerateOptions{
		MaxNewTokens: len(ref.IDs), Sampling: []SamplerOption{Temperature(0)},
	}, func(p string) error {
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(res.PromptIDs, ref.PromptIDs) {
		t.Errorf("prompt ids %v, want %v", res.PromptIDs, ref.PromptIDs)
	}
	if !equalIDs(res.IDs, ref.IDs) {
		t.Errorf("generated %v, want %v", res.IDs, ref.IDs)
	}
	if res.StopReason != StopLength {
		t.Errorf("stop reason %s", res.StopReason)
	}
	text, _ := m.Detokenize(ref.IDs, true)
	if strings.Join(pieces, "") != text || res.Text != text {
		t.Errorf("text %q, want %q", res.Text, text)
	}
	toks, _ := s.Tokens()
	if !equalIDs(toks, append(append([]int32(nil), ref.PromptIDs...), ref.IDs...)) {
		t.Error("the session does not hold prompt + generated ids")
	}
}

func TestGeneratePromptForms(t *testing.T) {
	m := tinyModel(t)
	ref, msgs, rendered := chat01(t)
	const n = 10
	greedy := &GenerateOptions{MaxNewTokens: n, Sampling: []SamplerOption{Temperature(0)}}
	for name, p := range map[string]Prompt{
		"chat":   Chat(msgs...),
		"text":   Text(rendered), // starts with "<bos>": no second one is added
		"tokens": Tokens(ref.PromptIDs),
	} {
		s, err := m.NewSession(&SessionOptions{MaxContext: 128})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Generate(nil, p, greedy, nil)
		if err != nil || !equalIDs(res.IDs, ref.IDs[:n]) || !equalIDs(res.PromptIDs, ref.PromptIDs) {
			t.Errorf("%s: %v %v (prompt %v)", name, res.IDs, err, res.PromptIDs)
		}
		s.Close()
	}
	// prompt, then continue
	s, err := m.NewSession(&SessionOptions{MaxContext: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r1, err := s.Generate(nil, Tokens(ref.PromptIDs), &GenerateOptions{MaxNewTokens: 4, Sampling: []SamplerOption{Temperature(0)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Generate(nil, Continue(), &GenerateOptions{MaxNewTokens: n - 4, Sampling: []SamplerOption{Temperature(0)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(append(r1.IDs, r2.IDs...), ref.IDs[:n]) {
		t.Errorf("continued chain %v %v", r1.IDs, r2.IDs)
	}
}

func TestGenerateStops(t *testing.T) {
	m := tinyModel(t)
	ref, _, _ := chat01(t)
	eot, _ := m.Prop(PropEndOfTurnID)
	// end of generation: bias <end_of_turn> to the top after 3 tokens
	smp, err := NewSampler(m, Temperature(0))
	if err != nil {
		t.Fatal(err)
	}
	defer smp.Close()
	s, err := m.NewSession(&SessionOptions{MaxContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Generate(nil, UserMessage("سلام"), &GenerateOptions{MaxNewTokens: 50, Sampler: smp}, func(string) error {
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Reset()
	seen := 0
	res, err = s.Generate(nil, Tokens(ref.PromptIDs), &GenerateOptions{MaxNewTokens: 50, Sampler: smp}, func(string) error {
		seen++
		if seen == 2 {
			smp.SetLogitBias(int32(eot), 1e4)
		}
		return nil
	})
	smp.ClearLogitBias()
	if err != nil || res.StopReason != StopEOG {
		t.Fatalf("eog: %v %s", err, res.StopReason)
	}
	for _, id := range res.IDs {
		if int64(id) == eot {
			t.Error("the end id was appended")
		}
	}
	if s.NTokens() != len(ref.PromptIDs)+len(res.IDs) {
		t.Error("session and generated ids disagree")
	}
	// the callback stops it
	s.Reset()
	res, err = s.Generate(nil, Tokens(ref.PromptIDs), &GenerateOptions{MaxNewTokens: 50, Sampler: smp}, func(string) error {
		return StopGeneration
	})
	if err != nil || res.StopReason != StopCallback || len(res.IDs) == 0 || s.NTokens() != len(ref.PromptIDs)+len(res.IDs) {
		t.Errorf("StopGeneration: %v %s %d", err, res.StopReason, len(res.IDs))
	}
	// the callback's own error comes back
	s.Reset()
	boom := errors.New("boom")
	if _, err := s.Generate(nil, Tokens(ref.PromptIDs), nil, func(string) error { return boom }); err != boom {
		t.Errorf("callback error: %v", err)
	}
	// context full
	s2, err := m.NewSession(&SessionOptions{MaxContext: len(ref.PromptIDs) + 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	res, err = s2.Generate(nil, Tokens(ref.PromptIDs), &GenerateOptions{MaxNewTokens: 10, Sampler: smp}, nil)
	if err != nil || res.StopReason != StopContextFull || !equalIDs(res.IDs, ref.IDs[:3]) {
		t.Errorf("context full: %v %s %v", err, res.StopReason, res.IDs)
	}
	// a prompt longer than the context
	s2.Reset()
	s3, _ := m.NewSession(&SessionOptions{MaxContext: 5})
	defer s3.Close()
	if _, err := s3.Generate(nil, Tokens(ref.PromptIDs), nil, nil); !errors.Is(err, ErrContextFull) {
		t.Errorf("long prompt: %v", err)
	}
}

func TestSecondChatTurn(t *testing.T) {
	m := tinyModel(t)
	s, err := m.NewSession(&SessionOptions{MaxContext: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	greedy := &GenerateOptions{MaxNewTokens: 4, Sampling: []SamplerOption{Temperature(0)}}
	if _, err := s.Generate(nil, UserMessage("سلام"), greedy, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Generate(nil, UserMessage("ممنون"), greedy, nil)
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := m.Prop(PropEndOfTurnID)
	bos, _ := m.Prop(PropBOSID)
	nl, _ := m.Tokenize("\n", 0)
	turn, _ := m.ChatTokenize([]Message{{Role: "user", Content: "ممنون"}}, true, false)
	want := append(append([]int32{int32(eot)}, nl...), turn[1:]...)
	if !equalIDs(res.PromptIDs, want) {
		t.Errorf("second turn prompt %v, want %v", res.PromptIDs, want)
	}
	for _, id := range res.PromptIDs {
		if int64(id) == bos {
			t.Error("<bos> inside a conversation")
		}
	}
}

func TestMultiTurnMatchesTheTemplate(t *testing.T) {
	m := tinyModel(t)
	first := Message{Role: "user", Content: "سلام"}
	reply := "خوبم، ممنون."
	second := Message{Role: "user", Content: "چه خبر؟"}
	s, err := m.NewSession(&SessionOptions{MaxContext: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	turn1, _ := m.ChatTokenize([]Message{first}, true, false)
	replyIDs, _ := m.Tokenize(reply, 0)
	if _, err := s.Decode(nil, append(turn1, replyIDs...)); err != nil {
		t.Fatal(err)
	}
	history, _ := s.Tokens()
	res, err := s.Generate(nil, Chat(second), &GenerateOptions{MaxNewTokens: 1, Sampling: []SamplerOption{Temperature(0)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := m.ChatTokenize([]Message{first, {Role: "assistant", Content: reply}, second}, true, false)
	if got := append(history, res.PromptIDs...); !equalIDs(got, whole) {
		t.Errorf("history + second turn:\n%v\nwant the template's\n%v", got, whole)
	}
}

func TestSeededGeneration(t *testing.T) {
	m := tinyModel(t)
	run := func(seed uint64) []int32 {
		s, err := m.NewSession(&SessionOptions{MaxContext: 256})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		res, err := s.Generate(nil, UserMessage("سلام"), &GenerateOptions{MaxNewTokens: 16, Sampling: []SamplerOption{
			Temperature(1), TopK(50), Seed(seed), LogitBias(1, -1e30), LogitBias(7, -1e30)}}, nil)
		if err != nil || len(res.IDs) != 16 {
			t.Fatalf("seed %d: %v, %d ids", seed, err, len(res.IDs))
		}
		return res.IDs
	}
	a, b, c := run(7), run(7), run(8)
	if !equalIDs(a, b) {
		t.Errorf("same seed, different draws: %v %v", a, b)
	}
	if equalIDs(a, c) {
		t.Errorf("different seeds, same draws: %v", a)
	}
}

func TestGenerateArgumentErrors(t *testing.T) {
	m := tinyModel(t)
	s, err := m.NewSession(&SessionOptions{MaxContext: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	smp, _ := NewSampler(nil)
	defer smp.Close()
	cases := map[string]struct {
		p    Prompt
		o    *GenerateOptions
		want error
	}{
		"continue empty": {Continue(), nil, ErrInvalidArgument},
		"negative max":   {UserMessage("x"), &GenerateOptions{MaxNewTokens: -1}, ErrInvalidArgument},
		"both samplers":  {UserMessage("x"), &GenerateOptions{Sampler: smp, Sampling: []SamplerOption{Seed(1)}}, ErrInvalidArgument},
		"bad roles":      {Chat(Message{Role: "assistant", Content: "x"}), nil, ErrTemplate},
		"bad sampling":   {UserMessage("x"), &GenerateOptions{Sampling: []SamplerOption{Temperature(-1)}}, ErrInvalidArgument},
		"bad ids":        {Tokens([]int32{5, -3}), nil, ErrInvalidToken},
		"bad utf8":       {Text("\xff"), nil, ErrInvalidUTF8},
	}
	for name, c := range cases {
		if _, err := s.Generate(nil, c.p, c.o, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if s.NTokens() != 0 {
		t.Error("failed generations changed the session")
	}
}
