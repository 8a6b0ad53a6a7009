package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// JSONConstraint restricts sampling to tokens that continue a JSON text
// valid for a JSON Schema (a subset: see docs/go.md and gemfa.h). Attach it
// with Sampler.SetConstraint, or set GenerateOptions.JSONSchema; the sampler
// then advances it by every token it returns. Calls are serialized by a
// mutex. It keeps no reference to the model.
type JSONConstraint struct {
	owner
	mu sync.Mutex
}

// NewJSONConstraint compiles schema (JSON text; "" or "{}" = any JSON
// value) for m's vocabulary. Creating one builds and walks a vocabulary
// trie (~0.15 s of CPU for Gemma's 262k tokens; reuse one with Reset).
// Errors: ErrUnsupported (a keyword outside the subset; the message names
// it), ErrFormat (not JSON), ErrInvalidArgument (a bad value),
// ErrNoTokenizer, ErrClosed.
func NewJSONConstraint(m *Model, schema string) (*JSONConstraint, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	var text *C.char
	if schema != "" {
		text = cString(schema)
		defer cFree(unsafe.Pointer(text))
	}
	var cc *C.gemfa_constraint
	if err := call(func() C.gemfa_status {
		return C.gemfa_constraint_new_json(cm, text, C.size_t(len(schema)), &cc)
	}); err != nil {
		return nil, err
	}
	c := &JSONConstraint{}
	c.init(newHandle(unsafe.Pointer(cc), "constraint", func(p unsafe.Pointer) {
		C.gemfa_constraint_free((*C.gemfa_constraint)(p))
	}))
	runtime.SetFinalizer(c, (*JSONConstraint).Close)
	return c, nil
}

// Close frees the constraint (after any sampler it is attached to lets
// go); idempotent.
func (c *JSONConstraint) Close() error {
	if c == nil {
		return nil
	}
	c.close()
	return nil
}

func (c *JSONConstraint) with(fn func(cc *C.gemfa_constraint) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.use()
	if err != nil {
		return err
	}
	defer c.h.release()
	return fn((*C.gemfa_constraint)(p))
}

// Reset goes back to the start of a document.
func (c *JSONConstraint) Reset() error {
	return c.with(func(cc *C.gemfa_constraint) error {
		return call(func() C.gemfa_status { return C.gemfa_constraint_reset(cc) })
	})
}

// Accept advances by a token you force (sampled tokens are accepted by the
// sampler). Errors: ErrInvalidToken (outside the vocabulary, or the text
// cannot go on with it; the constraint is then unchanged).
func (c *JSONConstraint) Accept(id int32) error {
	return c.with(func(cc *C.gemfa_constraint) error {
		return call(func() C.gemfa_status { return C.gemfa_constraint_accept(cc, C.int32_t(id)) })
	})
}

// Complete reports whether the text so far is a complete value (the
// end-of-generation token is allowed).
func (c *JSONConstraint) Complete() bool {
	done := false
	_ = c.with(func(cc *C.gemfa_constraint) error {
		done = C.gemfa_constraint_is_complete(cc) != 0
		return nil
	})
	return done
}

// Allowed returns the token ids allowed next.
func (c *JSONConstraint) Allowed() ([]int32, error) {
	var ids []int32
	err := c.with(func(cc *C.gemfa_constraint) error {
		var n C.size_t
		C.gemfa_constraint_mask(cc, nil, 0, &n)
		buf := cAlloc(int(n))
		defer cFree(buf)
		if err := call(func() C.gemfa_status {
			return C.gemfa_constraint_mask(cc, (*C.uint8_t)(buf), n, &n)
		}); err != nil {
			return err
		}
		for i, v := range unsafe.Slice((*byte)(buf), int(n)) {
			if v != 0 {
				ids = append(ids, int32(i))
			}
		}
		return nil
	})
	return ids, err
}
