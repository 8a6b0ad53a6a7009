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

// StopMatcher finds stop strings in text that arrives in pieces (the chunks
// of a DetokStream): Feed releases the text that can no longer be part of a
// stop string and holds back exactly the tail that still could. The first
// stop string to complete ends the text just before it (see gemfa.h, "Stop
// strings"). Calls are serialized by a mutex.
type StopMatcher struct {
	owner
	mu sync.Mutex
}

// NewStopMatcher creates a matcher for the given stop strings. Errors:
// ErrInvalidArgument (an empty stop string), ErrInvalidUTF8.
func NewStopMatcher(stops ...string) (*StopMatcher, error) {
	ptrs := make([]*C.char, len(stops))
	lens := make([]C.size_t, len(stops))
	for i, s := range stops {
		ptrs[i] = cString(s)
		lens[i] = C.size_t(len(s))
	}
	defer func() {
		for _, p := range ptrs {
			cFree(unsafe.Pointer(p))
		}
	}()
	var pp **C.char
	var lp *C.size_t
	if len(stops) > 0 {
		pp, lp = &ptrs[0], &lens[0]
	}
	var cm *C.gemfa_stop_matcher
	if err := call(func() C.gemfa_status {
		return C.gemfa_stop_matcher_new(pp, lp, C.size_t(len(stops)), &cm)
	}); err != nil {
		return nil, err
	}
	m := &StopMatcher{}
	m.init(newHandle(unsafe.Pointer(cm), "stop matcher",
		func(p unsafe.Pointer) { C.gemfa_stop_matcher_free((*C.gemfa_stop_matcher)(p)) }))
	runtime.SetFinalizer(m, (*StopMatcher).Close)
	return m, nil
}

// Close frees the matcher; idempotent.
func (m *StopMatcher) Close() error {
	if m == nil {
		return nil
	}
	m.close()
	return nil
}

func (m *StopMatcher) with(fn func(cm *C.gemfa_stop_matcher) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.use()
	if err != nil {
		return err
	}
	defer m.h.release()
	return fn((*C.gemfa_stop_matcher)(p))
}

// Feed adds the next piece of text. It returns the text released by this
// call and whether a stop string completed (the released text then ends just
// before it, and later calls release nothing until Reset).
func (m *StopMatcher) Feed(text string) (released string, hit bool, err error) {
	err = m.with(func(cm *C.gemfa_stop_matcher) error {
		b := []byte(text)
		var out *C.char
		var n C.size_t
		var h C.int
		if err := call(func() C.gemfa_status {
			return C.gemfa_stop_matcher_feed(cm, bytesPtr(b), C.size_t(len(b)), &out, &n, &h)
		}); err != nil {
			return err
		}
		released, hit = C.GoStringN(out, C.int(n)), h != 0
		return nil
	})
	return released, hit, err
}

// Flush ends the text: it returns the held-back tail (nothing after a hit)
// and resets the matcher.
func (m *StopMatcher) Flush() (string, error) {
	var s string
	err := m.with(func(cm *C.gemfa_stop_matcher) error {
		var out *C.char
		var n C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_stop_matcher_flush(cm, &out, &n) }); err != nil {
			return err
		}
		s = C.GoStringN(out, C.int(n))
		return nil
	})
	return s, err
}

// Reset forgets held text and a hit.
func (m *StopMatcher) Reset() error {
	return m.with(func(cm *C.gemfa_stop_matcher) error {
		C.gemfa_stop_matcher_reset(cm)
		return nil
	})
}

// Held returns how many bytes are held back.
func (m *StopMatcher) Held() (int, error) {
	var n int
	err := m.with(func(cm *C.gemfa_stop_matcher) error {
		n = int(C.gemfa_stop_matcher_held(cm))
		return nil
	})
	return n, err
}
