package gemfa

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dataDir is tests/data of the libgemfa source tree: $GEMFA_TEST_DATA, or
// found from this package's directory (go test runs in it).
func dataDir(t testing.TB) string {
	if d := os.Getenv("GEMFA_TEST_DATA"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join("..", "..", "..", "tests", "data"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tinyDir(t testing.TB) string { return filepath.Join(dataDir(t), "tiny-gemma3n") }

const logitsTol = 0.01 // golden.json: float32 engines, logits max |diff|

var (
	sharedOnce  sync.Once
	sharedModel *Model
	sharedErr   error
)

// tinyModel is the f32 tiny fixture, loaded once and never closed.
func tinyModel(t testing.TB) *Model {
	sharedOnce.Do(func() {
		sharedModel, sharedErr = Load(tinyDir(t), &LoadOptions{Weights: WeightsF32})
	})
	if sharedErr != nil {
		t.Fatalf("loading the tiny model: %v", sharedErr)
	}
	return sharedModel
}

func readJSON(t testing.TB, path string, v interface{}) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readJSONL(t testing.TB, name string) []map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir(t), "tokenizer", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func field(t testing.TB, rec map[string]json.RawMessage, key string, v interface{}) bool {
	t.Helper()
	raw, ok := rec[key]
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("field %s: %v", key, err)
	}
	return true
}

func readF32(t testing.TB, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func readI32(t testing.TB, path string) []int32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

type goldenSeq struct {
	Tokens      []int32   `json:"tokens"`
	TokensFile  string    `json:"tokens_file"`
	LogitsFile  string    `json:"logits_file"`
	LogitsShape []int     `json:"logits_shape"`
	Argmax      []int     `json:"argmax_per_position"`
	Margin      []float64 `json:"top2_margin_per_position"`
}

// golden returns a sequence of golden.json with its tokens and logits rows.
func golden(t testing.TB, name string) (goldenSeq, []int32, [][]float32) {
	dir := filepath.Join(tinyDir(t), "golden")
	var g struct {
		Sequences map[string]goldenSeq `json:"sequences"`
	}
	readJSON(t, filepath.Join(dir, "golden.json"), &g)
	seq, ok := g.Sequences[name]
	if !ok {
		t.Fatalf("no golden sequence %q", name)
	}
	tokens := readI32(t, filepath.Join(dir, seq.TokensFile))
	flat := readF32(t, filepath.Join(dir, seq.LogitsFile))
	n, vocab := seq.LogitsShape[0], seq.LogitsShape[1]
	if len(flat) != n*vocab {
		t.Fatalf("golden %s: %d floats, want %d", name, len(flat), n*vocab)
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = flat[i*vocab : (i+1)*vocab]
	}
	return seq, tokens, rows
}

func maxAbsDiff(t testing.TB, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("length %d, want %d", len(got), len(want))
	}
	d := 0.0
	for i := range got {
		if x := math.Abs(float64(got[i]) - float64(want[i])); x > d || math.IsNaN(x) {
			d = x
			if math.IsNaN(x) {
				return math.Inf(1)
			}
		}
	}
	return d
}

func assertClose(t testing.TB, got, want []float32, what string) {
	t.Helper()
	if d := maxAbsDiff(t, got, want); d > logitsTol {
		t.Errorf("%s: max |diff| %g > %g", what, d, logitsTol)
	}
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// waitFreed runs the garbage collector until the live C handles drop to
// want (finalizers run on their own goroutine).
func waitFreed(t testing.TB, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for atomic.LoadInt64(&liveHandles) != want {
		if time.Now().After(deadline) {
			t.Fatalf("live C handles: %d, want %d", atomic.LoadInt64(&liveHandles), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
