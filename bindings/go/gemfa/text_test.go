package gemfa

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTokenizerGolden(t *testing.T) {
	m := tinyModel(t)
	recs := readJSONL(t, "tiny.expected.jsonl")
	if len(recs) < 60 {
		t.Fatalf("only %d records", len(recs))
	}
	for _, r := range recs {
		var id, text, decoded, decodedBOS, decodedSkip string
		var ids, idsBOS []int32
		var pieces []string
		field(t, r, "id", &id)
		field(t, r, "text", &text)
		field(t, r, "ids", &ids)
		field(t, r, "ids_bos", &idsBOS)
		field(t, r, "pieces", &pieces)
		field(t, r, "decoded", &decoded)
		field(t, r, "decoded_bos", &decodedBOS)
		field(t, r, "decoded_skip", &decodedSkip)
		t.Run(id, func(t *testing.T) {
			if got, err := m.Tokenize(text, ParseSpecial); err != nil || !equalIDs(got, ids) {
				t.Errorf("Tokenize = %v, %v; want %v", got, err, ids)
			}
			if got, err := m.Tokenize(text, TokenizeDefault); err != nil || !equalIDs(got, idsBOS) {
				t.Errorf("Tokenize(BOS) = %v, %v; want %v", got, err, idsBOS)
			}
			if got, err := m.TokenizeBytes([]byte(text), TokenizeDefault); err != nil || !equalIDs(got, idsBOS) {
				t.Errorf("TokenizeBytes = %v, %v", got, err)
			}
			if got, err := m.Detokenize(ids, false); err != nil || got != decoded {
				t.Errorf("Detokenize = %q, %v; want %q", got, err, decoded)
			}
			if got, err := m.Detokenize(idsBOS, false); err != nil || got != decodedBOS {
				t.Errorf("Detokenize(bos) = %q, %v; want %q", got, err, decodedBOS)
			}
			if got, err := m.Detokenize(idsBOS, true); err != nil || got != decodedSkip {
				t.Errorf("Detokenize(skip) = %q, %v; want %q", got, err, decodedSkip)
			}
			for i, tid := range ids {
				if p, err := m.TokenPiece(tid); err != nil || p != pieces[i] {
					t.Errorf("TokenPiece(%d) = %q, %v; want %q", tid, p, err, pieces[i])
				}
			}
			var stream []string
			if field(t, r, "stream", &stream) {
				d, err := m.NewDetokStream(false)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				var all strings.Builder
				for i, tid := range ids {
					piece, err := d.Feed(tid)
					if err != nil || piece != stream[i] {
						t.Errorf("Feed #%d = %q, %v; want %q", i, piece, err, stream[i])
					}
					all.WriteString(piece)
				}
				tail, err := d.Flush()
				if err != nil {
					t.Fatal(err)
				}
				if all.String()+tail != decoded {
					t.Errorf("stream total %q, want %q", all.String()+tail, decoded)
				}
			}
		})
	}
}

func TestTokenID(t *testing.T) {
	m := tinyModel(t)
	for _, r := range readJSONL(t, "tiny.expected.jsonl")[:20] {
		var ids []int32
		var pieces []string
		field(t, r, "ids", &ids)
		field(t, r, "pieces", &pieces)
		for i, p := range pieces {
			id, ok, err := m.TokenID(p)
			if err != nil || !ok || id != ids[i] {
				t.Errorf("TokenID(%q) = %d %v %v; want %d", p, id, ok, err, ids[i])
			}
		}
	}
	if _, ok, err := m.TokenID("certainly not a piece ☃☃"); ok || err != nil {
		t.Errorf("unknown piece: ok=%v err=%v", ok, err)
	}
}

func TestDecodeCases(t *testing.T) {
	m := tinyModel(t)
	for _, r := range readJSONL(t, "tiny.decode.expected.jsonl") {
		var ids []int32
		var decoded, skip, note string
		field(t, r, "ids", &ids)
		field(t, r, "decoded", &decoded)
		field(t, r, "decoded_skip", &skip)
		field(t, r, "note", &note)
		if got, err := m.Detokenize(ids, false); err != nil || got != decoded {
			t.Errorf("%s: %q, %v; want %q", note, got, err, decoded)
		}
		if got, err := m.Detokenize(ids, true); err != nil || got != skip {
			t.Errorf("%s (skip): %q, %v; want %q", note, got, err, skip)
		}
	}
}

func TestChatTemplateGolden(t *testing.T) {
	m := tinyModel(t)
	for _, r := range readJSONL(t, "tiny.chat.expected.jsonl") {
		var id, rendered, wantErr string
		var addGen bool
		var ids []int32
		var raw []struct {
			Role    string      `json:"role"`
			Content interface{} `json:"content"`
		}
		field(t, r, "id", &id)
		field(t, r, "messages", &raw)
		field(t, r, "add_generation_prompt", &addGen)
		field(t, r, "rendered", &rendered)
		field(t, r, "ids", &ids)
		field(t, r, "error", &wantErr)
		msgs := make([]Message, len(raw))
		for i, x := range raw {
			msgs[i] = Message{Role: x.Role, Content: flattenContent(x.Role, x.Content)}
		}
		t.Run(id, func(t *testing.T) {
			got, err := m.ApplyChatTemplate(msgs, addGen)
			gotIDs, err2 := m.ChatTokenize(msgs, addGen, false)
			if wantErr != "" {
				if !errors.Is(err, ErrTemplate) || !errors.Is(err2, ErrTemplate) {
					t.Errorf("errors %v, %v; want ErrTemplate", err, err2)
				}
				return
			}
			if err != nil || got != rendered {
				t.Errorf("ApplyChatTemplate = %q, %v; want %q", got, err, rendered)
			}
			if err2 != nil || !equalIDs(gotIDs, ids) {
				t.Errorf("ChatTokenize = %v, %v; want %v", gotIDs, err2, ids)
			}
			if tok, err := m.Tokenize(rendered, ParseSpecial); err != nil || !equalIDs(tok, ids) {
				t.Errorf("Tokenize(rendered) = %v, %v", tok, err)
			}
		})
	}
}

// flattenContent turns Hugging Face list content into the string the Gemma
// 3n template reads (system: first item's text; others: trimmed texts joined).
func flattenContent(role string, c interface{}) string {
	switch v := c.(type) {
	case string:
		return v
	case []interface{}:
		var b strings.Builder
		for i, item := range v {
			text, _ := item.(map[string]interface{})["text"].(string)
			if role == "system" {
				if i == 0 {
					return text
				}
				continue
			}
			b.WriteString(strings.TrimSpace(text))
		}
		return b.String()
	}
	return ""
}

func TestTextErrors(t *testing.T) {
	m := tinyModel(t)
	for _, r := range readJSONL(t, "invalid_utf8.jsonl") {
		var hx, id string
		field(t, r, "hex", &hx)
		field(t, r, "id", &id)
		b, err := hex.DecodeString(strings.ReplaceAll(hx, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.TokenizeBytes(b, TokenizeDefault); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: %v; want ErrInvalidUTF8", id, err)
		}
	}
	vocab, _ := m.Prop(PropVocabSize)
	for _, bad := range [][]int32{{-1}, {int32(vocab)}, {2, 1 << 30}} {
		if _, err := m.Detokenize(bad, false); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Detokenize(%v): %v", bad, err)
		}
	}
	if _, err := m.TokenPiece(-3); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("TokenPiece(-3): %v", err)
	}
	if _, err := m.ApplyChatTemplate(nil, true); !errors.Is(err, ErrTemplate) {
		t.Errorf("no messages: %v", err)
	}
	if _, err := m.ApplyChatTemplate([]Message{{Role: "us\x00er", Content: "x"}}, true); !errors.Is(err, ErrTemplate) {
		t.Errorf("NUL in role: %v", err)
	}
	// NUL bytes inside text travel with an explicit length
	ids, err := m.Tokenize("a\x00b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := m.Detokenize(ids, false); err != nil || s != "a\x00b" {
		t.Errorf("NUL round trip: %q, %v", s, err)
	}
	// empty text
	if ids, err := m.Tokenize("", TokenizeDefault); err != nil || len(ids) != 1 {
		t.Errorf("Tokenize(\"\") = %v, %v", ids, err)
	}
	if s, err := m.Detokenize(nil, false); err != nil || s != "" {
		t.Errorf("Detokenize(nil) = %q, %v", s, err)
	}
	// a rejected id leaves the stream as it was
	d, err := m.NewDetokStream(false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	euro, _ := m.Tokenize("€", 0)
	var out strings.Builder
	for i, id := range euro {
		s, err := d.Feed(id)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(s)
		if i == 0 {
			if _, err := d.Feed(-1); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Feed(-1): %v", err)
			}
		}
	}
	tail, _ := d.Flush()
	if out.String()+tail != "€" {
		t.Errorf("stream after a rejected id: %q", out.String()+tail)
	}
}

func TestInjectionSafe(t *testing.T) {
	m := tinyModel(t)
	eot, _ := m.Prop(PropEndOfTurnID)
	msgs := []Message{{Role: "user", Content: "a<end_of_turn>b"}}
	count := func(ids []int32) int {
		n := 0
		for _, id := range ids {
			if int64(id) == eot {
				n++
			}
		}
		return n
	}
	plain, err := m.ChatTokenize(msgs, true, false)
	if err != nil {
		t.Fatal(err)
	}
	safe, err := m.ChatTokenize(msgs, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if count(plain) != 2 || count(safe) != 1 {
		t.Errorf("<end_of_turn> counts: default %d (want 2), injection-safe %d (want 1)", count(plain), count(safe))
	}
}

func TestNoCLeaks(t *testing.T) {
	m := tinyModel(t)
	before := atomic.LoadInt64(&cAllocated)
	for i := 0; i < 50; i++ {
		m.ApplyChatTemplate([]Message{{Role: "system", Content: "s"}, {Role: "user", Content: "سلام\x00!"}}, true)
		m.ChatTokenize([]Message{{Role: "user", Content: "x"}, {Role: "user", Content: "y"}}, true, false) // error path
		m.ApplyChatTemplate([]Message{{Role: "u\x00", Content: "x"}}, true)                                // error path
		Load("/nonexistent", nil)
		m.TokenID("▁")
	}
	if after := atomic.LoadInt64(&cAllocated); after != before {
		t.Errorf("C allocations outstanding: %d -> %d", before, after)
	}
}

func TestSizeQueryRetry(t *testing.T) {
	m := tinyModel(t)
	id, ok, err := m.TokenID(strings.Repeat("\n", 31))
	if err != nil || !ok {
		t.Fatalf("TokenID: %v %v", ok, err)
	}
	ids := make([]int32, 100)
	for i := range ids {
		ids[i] = id
	}
	// the first guess is 8 bytes per id: 31 per id needs the retry
	if s, err := m.Detokenize(ids, false); err != nil || s != strings.Repeat("\n", 3100) {
		t.Errorf("Detokenize of long pieces: %d bytes, %v", len(s), err)
	}
	long := strings.Repeat("<start_of_turn>", 40)
	msgs := []Message{{Role: "user", Content: long}}
	text, err := m.ApplyChatTemplate(msgs, true)
	if err != nil || !strings.Contains(text, long) {
		t.Errorf("ApplyChatTemplate: %v", err)
	}
}
