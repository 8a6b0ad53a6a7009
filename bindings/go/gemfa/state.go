package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
*/
import "C"

import (
	"context"
	"unsafe"
)

// Truncate keeps the first n tokens: the next decode continues at position
// n, as in a session that decoded only those. The logits are cleared
// (Logits returns nil) unless n equals NTokens, which changes nothing.
// Cheap when at most ~256 tokens are dropped since the latest decodes;
// longer rollbacks on models with sliding-window layers re-decode the n
// kept tokens, which ctx can cancel (docs/session-state.md).
// Errors: ErrInvalidArgument (n negative or above NTokens), ErrCancelled,
// ErrOutOfMemory, ErrClosed; the session is then unchanged.
func (s *Session) Truncate(ctx context.Context, n int) error {
	if n < 0 {
		return argError("n %d is negative", n)
	}
	return s.with(func(cs *C.gemfa_session) error {
		return s.ctx.run(ctx, func() C.gemfa_status { return C.gemfa_session_truncate(cs, C.size_t(n)) })
	})
}

// Save returns the session's state (tokens, KV cache, last logits), to be
// restored with Context.LoadSession in this or another process.
func (s *Session) Save() ([]byte, error) {
	var out []byte
	err := s.with(func(cs *C.gemfa_session) error {
		var need C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_session_save(cs, nil, 0, &need) }); err != nil &&
			!isStatus(err, StatusBufferTooSmall) {
			return err
		}
		buf := cAlloc(int(need)) // C memory: the library writes it without Go pointer rules
		defer cFree(buf)
		if err := call(func() C.gemfa_status { return C.gemfa_session_save(cs, buf, need, &need) }); err != nil {
			return err
		}
		out = C.GoBytes(buf, C.int(need))
		return nil
	})
	return out, err
}

// SaveFile writes the session's state to path (a temporary file renamed
// over path, so readers never see a partial state).
// Errors: ErrNotFound (no such directory), ErrIO, ErrClosed.
func (s *Session) SaveFile(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return s.with(func(cs *C.gemfa_session) error {
		return call(func() C.gemfa_status { return C.gemfa_session_save_file(cs, cpath) })
	})
}

// LoadSession creates a session on c holding a state made by Session.Save;
// it continues exactly like the saved session (the same logits, bit for
// bit). maxContext: most tokens it holds, 0 = the saved session's.
// Errors: ErrModelMismatch (a state of another model, other weights or
// weight type), ErrFormat (not a state, truncated, damaged), ErrUnsupported
// (a newer format), ErrContextFull, ErrInvalidArgument, ErrClosed.
func (c *Context) LoadSession(state []byte, maxContext int) (*Session, error) {
	return c.LoadSessionKV(state, maxContext, KVDefault)
}

// LoadSessionKV is LoadSession requiring a KV type (KVDefault: the state's;
// another type than the state's is ErrInvalidArgument).
func (c *Context) LoadSessionKV(state []byte, maxContext int, kv KVType) (*Session, error) {
	n := len(state)
	if n == 0 {
		state = []byte{0} // a valid pointer; the library then reports the state as too short
	}
	return c.loadSession(maxContext, kv, func(cc *C.gemfa_context, o *C.gemfa_session_options, out **C.gemfa_session) C.gemfa_status {
		return C.gemfa_session_load(cc, o, unsafe.Pointer(&state[0]), C.size_t(n), out)
	})
}

// LoadSessionFile is LoadSession from a file written by Session.SaveFile.
// Errors as LoadSession, plus ErrNotFound (no such file; also matches
// fs.ErrNotExist) and ErrIO.
func (c *Context) LoadSessionFile(path string, maxContext int) (*Session, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return c.loadSession(maxContext, KVDefault, func(cc *C.gemfa_context, o *C.gemfa_session_options, out **C.gemfa_session) C.gemfa_status {
		return C.gemfa_session_load_file(cc, o, cpath, out)
	})
}

// LoadSession restores a saved state into a session with a context of its
// own (opts as in NewSession; MaxContext 0 keeps the saved session's).
func (m *Model) LoadSession(state []byte, opts *SessionOptions) (*Session, error) {
	if opts == nil {
		opts = &SessionOptions{}
	}
	c, err := m.NewContext(&ContextOptions{Threads: opts.Threads, Cancel: opts.Cancel})
	if err != nil {
		return nil, err
	}
	defer c.Close() // the session holds the context from here on
	return c.LoadSessionKV(state, opts.MaxContext, opts.KVType)
}

func (c *Context) loadSession(maxContext int, kv KVType, load func(*C.gemfa_context, *C.gemfa_session_options, **C.gemfa_session) C.gemfa_status) (*Session, error) {
	if maxContext < 0 {
		return nil, argError("maxContext %d is negative", maxContext)
	}
	return c.openSession(maxContext, kv, load)
}

func isStatus(err error, st Status) bool {
	e, ok := err.(*Error)
	return ok && e.Code == st
}
