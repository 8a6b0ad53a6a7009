package gemfa

/*
#include <gemfa.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// MaxTopLogprobs is the most alternatives GenerateOptions.TopLogprobs may ask
// for per token (OpenAI's limit).
const MaxTopLogprobs = 20

// TokenProb is a token id with its log-probability.
type TokenProb struct {
	ID      int32
	Logprob float32
}

// Logprobs computes log-probabilities under raw logits (log-softmax before
// temperature or penalties; NaN counts as -Inf, +Inf as the largest float):
// the log-probability of token (0 when token < 0: not asked for) and the top
// most likely ids, best first, ties to the lower id (fewer when the
// vocabulary is smaller or logits are -Inf). Errors: ErrInvalidArgument (no
// logits, every logit -Inf or NaN, top < 0), ErrInvalidToken (token >=
// len(logits)).
func Logprobs(logits []float32, token int32, top int) (float32, []TokenProb, error) {
	if top < 0 {
		return 0, nil, argError("top %d is negative", top)
	}
	return logprobsRaw(floatsPtr(logits), len(logits), token, top)
}

func logprobsRaw(logits *C.float, n int, token int32, top int) (float32, []TokenProb, error) {
	if top > n {
		top = n
	}
	ids := make([]int32, top)
	lps := make([]float32, top)
	var chosen C.float
	var cp *C.float
	if token >= 0 {
		cp = &chosen
	}
	var nTop C.size_t
	var np *C.size_t
	var ip *C.int32_t
	var lp *C.float
	if top > 0 {
		np, ip, lp = &nTop, idsPtr(ids), (*C.float)(unsafe.Pointer(&lps[0]))
	}
	if err := call(func() C.gemfa_status {
		return C.gemfa_logprobs(logits, C.size_t(n), C.int32_t(token), cp, C.size_t(top), ip, lp, np)
	}); err != nil {
		return 0, nil, err
	}
	out := make([]TokenProb, int(nTop))
	for i := range out {
		out[i] = TokenProb{ID: ids[i], Logprob: lps[i]}
	}
	return float32(chosen), out, nil
}

// logprobs reads the session's last logits in place.
func (s *Session) logprobs(token int32, top int) (float32, []TokenProb, error) {
	var lp float32
	var tops []TokenProb
	err := s.with(func(cs *C.gemfa_session) error {
		var logits *C.float
		var nv C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_session_logits(cs, &logits, &nv) }); err != nil {
			return err
		}
		if logits == nil {
			return argError("the session is empty: decode a prompt first")
		}
		var err error
		lp, tops, err = logprobsRaw(logits, int(nv), token, top)
		return err
	})
	return lp, tops, err
}

// TokenBytes returns the bytes token id adds to generated text: a
// byte-fallback token's single byte, else its piece as text ("▁" becomes a
// space); special tokens give their text.
func (m *Model) TokenBytes(id int32) ([]byte, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	s, err := queryText(32, func(buf *C.char, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_token_bytes(cm, C.int32_t(id), buf, cap, n)
	})
	return []byte(s), err
}

// TopLogprob is one alternative of a LogprobEntry (OpenAI's shape).
type TopLogprob struct {
	Token   string  `json:"token"`   // the bytes read as UTF-8 (invalid bytes as U+FFFD)
	Logprob float64 `json:"logprob"` // under the raw logits
	Bytes   []int   `json:"bytes"`   // what the token adds to the text
}

// LogprobEntry is the log-probability of one generated token with its most
// likely alternatives, shaped as an element of OpenAI's logprobs.content.
type LogprobEntry struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// tokenBytesCache memoizes Model.TokenBytes during a generation.
type tokenBytesCache struct {
	m     *Model
	cache map[int32][]byte
}

func (c *tokenBytesCache) entry(id int32, logprob float32) (TopLogprob, error) {
	b, ok := c.cache[id]
	if !ok {
		var err error
		if b, err = c.m.TokenBytes(id); err != nil {
			return TopLogprob{}, err
		}
		c.cache[id] = b
	}
	ints := make([]int, len(b))
	for i, x := range b {
		ints[i] = int(x)
	}
	return TopLogprob{Token: strings.ToValidUTF8(string(b), "\uFFFD"), Logprob: float64(logprob), Bytes: ints}, nil
}

// record appends the log-probabilities of the token just sampled by s.
func (c *tokenBytesCache) record(s *Session, id int32, top int, out *[]LogprobEntry) error {
	lp, tops, err := s.logprobs(id, top)
	if err != nil {
		return err
	}
	e, err := c.entry(id, lp)
	if err != nil {
		return err
	}
	entry := LogprobEntry{Token: e.Token, Logprob: e.Logprob, Bytes: e.Bytes, TopLogprobs: make([]TopLogprob, 0, len(tops))}
	for _, t := range tops {
		alt, err := c.entry(t.ID, t.Logprob)
		if err != nil {
			return err
		}
		entry.TopLogprobs = append(entry.TopLogprobs, alt)
	}
	*out = append(*out, entry)
	return nil
}
