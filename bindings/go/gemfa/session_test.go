package gemfa

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGoldenLogits(t *testing.T) {
	m := tinyModel(t)
	for _, name := range []string{"short", "long"} {
		seq, tokens, want := golden(t, name)
		if !equalIDs(tokens, seq.Tokens) {
			t.Fatalf("%s: token file and golden.json differ", name)
		}
		s, err := m.NewSession(&SessionOptions{MaxContext: 64, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.DecodeAll(context.Background(), tokens)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			assertClose(t, rows[i], want[i], name+" all-logits row")
			if seq.Margin[i] > 0.05 && argmax(rows[i]) != seq.Argmax[i] {
				t.Errorf("%s position %d: argmax %d, want %d", name, i, argmax(rows[i]), seq.Argmax[i])
			}
		}
		last, err := s.Logits()
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, last, want[len(want)-1], name+" Logits()")
		got, _ := s.Tokens()
		if !equalIDs(got, tokens) || s.NTokens() != len(tokens) {
			t.Errorf("%s: session tokens %v", name, got)
		}
		s.Close()
	}
}

func TestTokenByTokenAndChunks(t *testing.T) {
	m := tinyModel(t)
	_, tokens, want := golden(t, "long")
	s, err := m.NewSession(&SessionOptions{MaxContext: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range tokens {
		got, err := s.Decode(context.Background(), []int32{id})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, got, want[i], "token by token")
	}
	s.Reset()
	if s.NTokens() != 0 {
		t.Fatal("Reset left tokens")
	}
	if l, _ := s.Logits(); l != nil {
		t.Error("an empty session has logits")
	}
	if _, err := s.Decode(nil, tokens[:10]); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DecodeAll(nil, tokens[10:30])
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		assertClose(t, rows[i], want[10+i], "chunk")
	}
	last, err := s.Decode(nil, tokens[30:])
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, last, want[len(want)-1], "tail")
}

func TestForkAndBatch(t *testing.T) {
	m := tinyModel(t)
	_, tokens, want := golden(t, "long")
	c, err := m.NewContext(&ContextOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.NewSession(64)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Decode(nil, tokens[:5]); err != nil {
		t.Fatal(err)
	}
	b, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Decode(nil, tokens[5:9]); err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeBatch(nil, []*Session{a, b}, []int32{tokens[5], tokens[9]}); err != nil {
		t.Fatal(err)
	}
	la, _ := a.Logits()
	lb, _ := b.Logits()
	assertClose(t, la, want[5], "batch a")
	assertClose(t, lb, want[9], "batch b")
	if a.NTokens() != 6 || b.NTokens() != 10 {
		t.Errorf("tokens after batch: %d %d", a.NTokens(), b.NTokens())
	}
	if err := c.DecodeBatch(nil, []*Session{a, b}, []int32{1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("length mismatch: %v", err)
	}
	other, err := m.NewSession(&SessionOptions{MaxContext: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := c.DecodeBatch(nil, []*Session{a, other}, []int32{1, 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("foreign session: %v", err)
	}
	a.Close()
	if err := c.DecodeBatch(nil, []*Session{a, b}, []int32{1, 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("closed session in batch: %v", err)
	}
	if b.NTokens() != 10 {
		t.Errorf("a failed batch changed a session")
	}
}

func TestSessionErrors(t *testing.T) {
	m := tinyModel(t)
	_, tokens, _ := golden(t, "long")
	s, err := m.NewSession(&SessionOptions{MaxContext: 8, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MaxContext() != 8 || s.MemoryBytes() <= 0 {
		t.Errorf("MaxContext %d MemoryBytes %d", s.MaxContext(), s.MemoryBytes())
	}
	if _, err := s.Decode(nil, tokens[:6]); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Logits()
	if _, err := s.Decode(nil, tokens[6:9]); !errors.Is(err, ErrContextFull) {
		t.Errorf("overflow: %v", err)
	}
	after, _ := s.Logits()
	if got, _ := s.Tokens(); !equalIDs(got, tokens[:6]) || maxAbsDiff(t, before, after) != 0 {
		t.Error("a failed decode changed the session")
	}
	vocab, _ := m.Prop(PropVocabSize)
	for _, bad := range [][]int32{{-1}, {int32(vocab)}, {5, 1<<31 - 1}} {
		if _, err := s.Decode(nil, bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Decode(%v): %v", bad, err)
		}
	}
	if _, err := s.Decode(nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Decode(nil): %v", err)
	}
	if _, err := s.DecodeAll(nil, []int32{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DecodeAll(empty): %v", err)
	}
	if got, _ := s.Tokens(); !equalIDs(got, tokens[:6]) {
		t.Error("failed decodes changed the session")
	}
	if _, err := m.NewSession(&SessionOptions{MaxContext: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative context: %v", err)
	}
	ctxLen, _ := m.Prop(PropContextLength)
	if _, err := m.NewSession(&SessionOptions{MaxContext: int(ctxLen) + 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("context above the model's: %v", err)
	}
	if _, err := m.NewSession(&SessionOptions{Threads: -2}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative threads: %v", err)
	}
}

func TestCancellation(t *testing.T) {
	m := tinyModel(t)
	polled := 0
	stop := false
	s, err := m.NewSession(&SessionOptions{MaxContext: 64, Threads: 1, Cancel: func() bool {
		polled++
		return stop
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Decode(nil, []int32{2, 6}); err != nil || polled == 0 {
		t.Fatalf("decode: %v, polled %d times", err, polled)
	}
	stop = true
	if _, err := s.Decode(nil, []int32{475}); !errors.Is(err, ErrCancelled) {
		t.Errorf("user cancel: %v", err)
	}
	stop = false
	if s.NTokens() != 2 {
		t.Error("a cancelled decode changed the session")
	}
	// an already-cancelled context.Context
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Decode(ctx, []int32{475})
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("done context: %v", err)
	}
	// a context cancelled while decoding (from the cancel poll itself)
	ctx, cancel = context.WithCancel(context.Background())
	s2, err := m.NewSession(&SessionOptions{MaxContext: 64, Threads: 1, Cancel: func() bool {
		cancel()
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Decode(ctx, []int32{2, 6, 475}); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
		t.Errorf("context cancelled during decode: %v", err)
	}
	if s2.NTokens() != 0 {
		t.Error("cancelled decode changed the session")
	}
	// Session.Cancel from another goroutine
	s.Cancel()
	if _, err := s.Decode(nil, []int32{475}); !errors.Is(err, ErrCancelled) {
		t.Errorf("Cancel(): %v", err)
	}
	if _, err := s.Decode(nil, []int32{475}); err != nil {
		t.Errorf("the cancel request must be consumed: %v", err)
	}
	// a panic in the cancel callback surfaces in the decoding goroutine
	s3, err := m.NewSession(&SessionOptions{MaxContext: 8, Cancel: func() bool { panic("cancel-boom") }})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	func() {
		defer func() {
			if r := recover(); r != "cancel-boom" {
				t.Errorf("recovered %v", r)
			}
		}()
		s3.Decode(nil, []int32{2})
	}()
	if s3.NTokens() != 0 {
		t.Error("the panicking decode changed the session")
	}
	if _, err := s3.Tokens(); err != nil {
		t.Errorf("the session's mutex must be released after a panic: %v", err)
	}
}

func TestDeadline(t *testing.T) {
	m := tinyModel(t)
	s, err := m.NewSession(&SessionOptions{MaxContext: 4096, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := s.Generate(ctx, Tokens([]int32{2, 6}), &GenerateOptions{MaxNewTokens: 4000,
		Sampling: []SamplerOption{LogitBias(1, -1e30), LogitBias(7, -1e30)}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCancelled) {
		t.Fatalf("deadline: %v (generated %d)", err, len(res.IDs))
	}
	if got := s.NTokens(); got != 2+len(res.IDs) {
		t.Errorf("session has %d tokens, want prompt + %d generated", got, len(res.IDs))
	}
}

func TestGoroutines(t *testing.T) {
	m := tinyModel(t)
	_, tokens, want := golden(t, "long")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.NewSession(&SessionOptions{MaxContext: 64, Threads: 1})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for k := 0; k < 3; k++ {
				rows, err := s.DecodeAll(nil, tokens)
				if err != nil {
					errs <- err
					return
				}
				for i := range rows {
					if maxAbsDiff(t, rows[i], want[i]) > logitsTol {
						errs <- errors.New("mismatch")
						return
					}
				}
				s.Reset()
			}
		}()
	}
	// one session shared by two goroutines: serialized, nothing lost
	shared, err := m.NewSession(&SessionOptions{MaxContext: 512, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				if _, err := shared.Decode(nil, []int32{2, 6, 475}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if shared.NTokens() != 120 {
		t.Errorf("shared session has %d tokens, want 120", shared.NTokens())
	}
}

func TestCloseWhileDecoding(t *testing.T) {
	m, err := Load(tinyDir(t), &LoadOptions{Weights: WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(&SessionOptions{MaxContext: 4096, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			if i%1000 == 999 {
				s.Reset() // never reach the context limit, however fast decoding is
			}
			if _, err := s.Decode(nil, []int32{2, 6, 475, 8}); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	m.Close()
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("decode after Close: %v", err)
	}
	if m.h.alive() {
		t.Error("model still alive after every Close")
	}
}

func TestSiblingSessionsClosedWhileOneDecodes(t *testing.T) {
	m := tinyModel(t)
	_, tokens, want := golden(t, "short")
	c, err := m.NewContext(&ContextOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.NewSession(64)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a.Reset()
			rows, err := a.DecodeAll(nil, tokens)
			if err != nil {
				errs <- err
				return
			}
			for i := range rows {
				if maxAbsDiff(t, rows[i], want[i]) > logitsTol {
					errs <- errors.New("mismatch")
					return
				}
			}
		}
	}()
	for i := 0; i < 100; i++ {
		b, err := c.NewSession(16)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Decode(nil, []int32{2, 6}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			b.Close()
		} else {
			runtime.GC() // the finalizer frees b on its own goroutine
		}
	}
	close(stop)
	for err := range errs {
		t.Error(err)
	}
}
