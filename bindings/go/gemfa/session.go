package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
#include "callbacks.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"
)

// cancelState is what a context's cancel callback looks at. The library
// polls it between layers during a decode.
type cancelState struct {
	requested atomic.Bool                     // Context.Cancel was called
	goCtx     atomic.Pointer[context.Context] // the running call's context.Context
	user      func() bool                     // ContextOptions.Cancel
	panicked  atomic.Value                    // a panic of user, re-raised by the call
}

//export goCancelCallback
func goCancelCallback(h C.uintptr_t) (stop C.int) {
	st := cgo.Handle(h).Value().(*cancelState)
	if st.requested.Load() {
		return 1
	}
	if p := st.goCtx.Load(); p != nil && (*p).Err() != nil {
		return 1
	}
	if st.user == nil {
		return 0
	}
	defer func() {
		if r := recover(); r != nil {
			st.panicked.Store(&r)
			stop = 1
		}
	}()
	if st.user() {
		return 1
	}
	return 0
}

// ContextOptions configures a Context. The zero value (or nil) means defaults.
type ContextOptions struct {
	Threads int // compute threads; 0 = all cores
	// Cancel, if set, is polled between layers during every decode; returning
	// true stops the decode with ErrCancelled. A panic in it is re-raised by
	// the decode call.
	Cancel func() bool
}

// Context holds compute resources (thread pool, scratch) and serves any
// number of sessions in turn. Calls on a context and on its sessions are
// serialized by a mutex: concurrent use is safe but not parallel; use one
// context per goroutine to decode in parallel. It keeps its model alive.
type Context struct {
	owner
	mu     sync.Mutex
	model  *Model
	cancel *cancelState
	vocab  int
}

// NewContext creates a compute context for m (opts may be nil).
// Errors: ErrNoWeights (vocabulary-only model), ErrInvalidArgument, ErrClosed.
func (m *Model) NewContext(opts *ContextOptions) (*Context, error) {
	if opts == nil {
		opts = &ContextOptions{}
	}
	if opts.Threads < 0 || opts.Threads > 1<<30 {
		return nil, argError("Threads %d is out of range", opts.Threads)
	}
	vocab, err := m.Prop(PropVocabSize)
	if err != nil {
		return nil, err
	}
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	var copts *C.gemfa_context_options
	if err := call(func() C.gemfa_status { return C.gemfa_context_options_new(&copts) }); err != nil {
		m.h.release()
		return nil, err
	}
	defer C.gemfa_context_options_free(copts)
	st := &cancelState{user: opts.Cancel}
	ch := cgo.NewHandle(st)
	err = call(func() C.gemfa_status { return C.gemfa_context_options_set_threads(copts, C.int(opts.Threads)) })
	if err == nil {
		err = call(func() C.gemfa_status { return C.gemfa_go_set_cancel(copts, C.uintptr_t(ch)) })
	}
	var cc *C.gemfa_context
	if err == nil {
		err = call(func() C.gemfa_status { return C.gemfa_context_new(cm, copts, &cc) })
	}
	if err != nil {
		ch.Delete()
		m.h.release()
		return nil, err
	}
	// the model count taken by ptr() stays with the context
	c := &Context{model: m, cancel: st, vocab: int(vocab)}
	h := newHandle(unsafe.Pointer(cc), "context", func(p unsafe.Pointer) { C.gemfa_context_free((*C.gemfa_context)(p)) }, m.h)
	h.onFree = ch.Delete // the C context no longer calls back
	c.init(h)
	runtime.SetFinalizer(c, (*Context).Close)
	return c, nil
}

// Close releases the context; idempotent. The C context is freed when its
// last session is closed too.
func (c *Context) Close() error {
	if c == nil {
		return nil
	}
	c.close()
	return nil
}

// Model returns the model of this context.
func (c *Context) Model() *Model { return c.model }

// Cancel asks the running decode on this context (or the next one) to stop
// with ErrCancelled. Safe to call from any goroutine.
func (c *Context) Cancel() { c.cancel.requested.Store(true) }

// run executes one decode-like C call with ctx wired to the cancel callback,
// on a locked OS thread, and turns a cancellation into a precise error.
// The caller holds c.mu.
func (c *Context) run(ctx context.Context, fn func() C.gemfa_status) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return &Error{Code: StatusCancelled, Message: "the context.Context is done: " + err.Error(), cause: err}
	}
	c.cancel.goCtx.Store(&ctx)
	runtime.LockOSThread()
	st := fn()
	err := lastError(st)
	runtime.UnlockOSThread()
	c.cancel.goCtx.Store(nil)
	if st == C.GEMFA_ERR_CANCELLED {
		c.cancel.requested.Store(false)
		e := err.(*Error)
		e.cause = ctx.Err()
		if p := c.cancel.panicked.Swap((*interface{})(nil)); p != nil {
			if r := p.(*interface{}); r != nil {
				panic(*r)
			}
		}
	}
	return err
}

// KVType is how a session stores its keys and values (gemfa_kv_type).
// KVF32 is exact; KVF16 rounds them to half precision at half the memory.
// The zero value KVDefault means f32 for a new session and the state's own
// type for a loaded one.
type KVType int

const (
	KVDefault KVType = iota
	KVF32
	KVF16
)

// String returns "f32", "f16" or "default".
func (k KVType) String() string {
	switch k {
	case KVF32:
		return "f32"
	case KVF16:
		return "f16"
	case KVDefault:
		return "default"
	}
	return fmt.Sprintf("KVType(%d)", int(k))
}

func (k KVType) c() (C.gemfa_kv_type, error) {
	switch k {
	case KVF32:
		return C.GEMFA_KV_F32, nil
	case KVF16:
		return C.GEMFA_KV_F16, nil
	}
	return 0, argError("unknown KV type %d", int(k))
}

// SessionOptions configures Model.NewSession.
type SessionOptions struct {
	MaxContext int         // most tokens the session holds; 0 = the model's context length
	Threads    int         // compute threads of the session's own context; 0 = all cores
	Cancel     func() bool // polled during decode (see ContextOptions.Cancel)
	// KVType: KVF16 halves the KV cache; KVDefault = f32 (new sessions) or
	// the state's type (LoadSession; a type given must match the state's:
	// ErrInvalidArgument otherwise, states are not converted).
	KVType KVType
}

// Session is one conversation: a KV cache and a position. Every failed call
// leaves it exactly as it was. It keeps its context and model alive.
type Session struct {
	owner
	ctx *Context
}

// NewSession creates a session with a context of its own.
func (m *Model) NewSession(opts *SessionOptions) (*Session, error) {
	if opts == nil {
		opts = &SessionOptions{}
	}
	c, err := m.NewContext(&ContextOptions{Threads: opts.Threads, Cancel: opts.Cancel})
	if err != nil {
		return nil, err
	}
	defer c.Close() // the session holds the context from here on
	return c.NewSessionKV(opts.MaxContext, opts.KVType)
}

// NewSession creates an empty session computing with c; maxContext is the
// most tokens it holds (0 = the model's context length).
// Errors: ErrInvalidArgument (negative or above the model's), ErrClosed.
func (c *Context) NewSession(maxContext int) (*Session, error) {
	return c.NewSessionKV(maxContext, KVDefault)
}

// NewSessionKV is NewSession with a KV type (KVDefault = f32).
// Errors: as NewSession, plus ErrInvalidArgument for an unknown type.
func (c *Context) NewSessionKV(maxContext int, kv KVType) (*Session, error) {
	return c.openSession(maxContext, kv, func(cc *C.gemfa_context, o *C.gemfa_session_options, out **C.gemfa_session) C.gemfa_status {
		return C.gemfa_session_new(cc, o, out)
	})
}

// openSession runs one of the calls that create a session on c (new, or
// loaded from a saved state) with session options holding maxContext.
func (c *Context) openSession(maxContext int, kv KVType, open func(*C.gemfa_context, *C.gemfa_session_options, **C.gemfa_session) C.gemfa_status) (*Session, error) {
	var ckv C.gemfa_kv_type
	if kv != KVDefault {
		var err error
		if ckv, err = kv.c(); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.use()
	if err != nil {
		return nil, err
	}
	var sopts *C.gemfa_session_options
	if err := call(func() C.gemfa_status { return C.gemfa_session_options_new(&sopts) }); err != nil {
		c.h.release()
		return nil, err
	}
	defer C.gemfa_session_options_free(sopts)
	var cs *C.gemfa_session
	err = call(func() C.gemfa_status { return C.gemfa_session_options_set_max_context(sopts, C.int64_t(maxContext)) })
	if err == nil && kv != KVDefault {
		err = call(func() C.gemfa_status { return C.gemfa_session_options_set_kv_type(sopts, ckv) })
	}
	if err == nil {
		err = call(func() C.gemfa_status { return open((*C.gemfa_context)(p), sopts, &cs) })
	}
	if err != nil {
		c.h.release()
		return nil, err
	}
	return c.wrapSession(cs), nil // keeps the context count taken by use()
}

func (c *Context) wrapSession(cs *C.gemfa_session) *Session {
	s := &Session{ctx: c}
	// Freeing a session may touch its context: serialize it with the
	// sibling sessions' calls (a finalizer frees on its own goroutine).
	free := func(p unsafe.Pointer) {
		c.mu.Lock()
		defer c.mu.Unlock()
		C.gemfa_session_free((*C.gemfa_session)(p))
	}
	s.init(newHandle(unsafe.Pointer(cs), "session", free, c.h))
	runtime.SetFinalizer(s, (*Session).Close)
	return s
}

// Close frees the session; idempotent.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.close()
	return nil
}

// Context returns the context this session computes with.
func (s *Session) Context() *Context { return s.ctx }

// Model returns the session's model.
func (s *Session) Model() *Model { return s.ctx.model }

// Cancel stops the running (or next) decode of the session's context.
func (s *Session) Cancel() { s.ctx.Cancel() }

// with runs fn holding the session handle and the context mutex. The handle
// is released after the mutex: the release may free the session, and that
// takes the mutex.
func (s *Session) with(fn func(cs *C.gemfa_session) error) error {
	p, err := s.use()
	if err != nil {
		return err
	}
	defer s.h.release()
	s.ctx.mu.Lock()
	defer s.ctx.mu.Unlock()
	return fn((*C.gemfa_session)(p))
}

// Decode appends ids (a prompt batch or one token) and runs the model. It
// returns a copy of the last position's logits (VocabSize floats). ctx
// cancels a running decode (the error then matches both ErrCancelled and
// ctx.Err()). Errors: ErrInvalidArgument (no ids), ErrInvalidToken,
// ErrContextFull, ErrCancelled, ErrClosed; the session is then unchanged.
func (s *Session) Decode(ctx context.Context, ids []int32) ([]float32, error) {
	var out []float32
	err := s.with(func(cs *C.gemfa_session) error {
		var logits *C.float
		if err := s.ctx.run(ctx, func() C.gemfa_status {
			return C.gemfa_decode(cs, idsPtr(ids), C.size_t(len(ids)), &logits)
		}); err != nil {
			return err
		}
		out = make([]float32, s.ctx.vocab)
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(logits)), s.ctx.vocab))
		return nil
	})
	return out, err
}

// DecodeAll is Decode returning every position's logits: len(ids) rows of
// VocabSize floats (one backing array).
func (s *Session) DecodeAll(ctx context.Context, ids []int32) ([][]float32, error) {
	vocab := s.ctx.vocab
	var rows [][]float32
	err := s.with(func(cs *C.gemfa_session) error {
		buf := make([]float32, len(ids)*vocab)
		var p *C.float
		if len(buf) > 0 {
			p = (*C.float)(unsafe.Pointer(&buf[0]))
		}
		if err := s.ctx.run(ctx, func() C.gemfa_status {
			return C.gemfa_decode_all(cs, idsPtr(ids), C.size_t(len(ids)), p, C.size_t(len(buf)))
		}); err != nil {
			return err
		}
		rows = make([][]float32, len(ids))
		for i := range rows {
			rows[i] = buf[i*vocab : (i+1)*vocab : (i+1)*vocab]
		}
		return nil
	})
	return rows, err
}

// DecodeBatch runs one decode step for many sessions of this context at
// once, reading each weight once: sessions[i] receives ids[i]. Read the
// results with Session.Logits. On error no session changes.
func (c *Context) DecodeBatch(ctx context.Context, sessions []*Session, ids []int32) error {
	if len(sessions) != len(ids) {
		return argError("%d sessions but %d ids", len(sessions), len(ids))
	}
	cp, err := c.use()
	if err != nil {
		return err
	}
	defer c.h.release()
	// the pointer array lives in C memory: Go memory passed to C may not hold pointers
	base := cAlloc(len(sessions) * int(unsafe.Sizeof(uintptr(0))))
	defer cFree(base)
	ptrs := unsafe.Slice((**C.gemfa_session)(base), len(sessions))
	for i, s := range sessions {
		if s == nil {
			return argError("session %d is nil", i)
		}
		if s.ctx != c {
			return argError("session %d belongs to another context", i)
		}
		p, err := s.use()
		if err != nil {
			return err
		}
		defer s.h.release() // after the mutex below is unlocked (see Session.with)
		ptrs[i] = (*C.gemfa_session)(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run(ctx, func() C.gemfa_status {
		return C.gemfa_decode_batch((*C.gemfa_context)(cp), (**C.gemfa_session)(base), idsPtr(ids), C.size_t(len(ids)))
	})
}

// Logits returns a copy of the last position's logits of the most recent
// decode, or nil when the session is empty.
func (s *Session) Logits() ([]float32, error) {
	var out []float32
	err := s.with(func(cs *C.gemfa_session) error {
		var p *C.float
		var n C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_session_logits(cs, &p, &n) }); err != nil {
			return err
		}
		if p != nil {
			out = make([]float32, int(n))
			copy(out, unsafe.Slice((*float32)(unsafe.Pointer(p)), int(n)))
		}
		return nil
	})
	return out, err
}

// Tokens returns a copy of the ids decoded so far.
func (s *Session) Tokens() ([]int32, error) {
	var out []int32
	err := s.with(func(cs *C.gemfa_session) error {
		var p *C.int32_t
		var n C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_session_tokens(cs, &p, &n) }); err != nil {
			return err
		}
		out = make([]int32, int(n))
		if n > 0 {
			copy(out, unsafe.Slice((*int32)(unsafe.Pointer(p)), int(n)))
		}
		return nil
	})
	return out, err
}

// NTokens returns the number of tokens in the session (0 when closed).
func (s *Session) NTokens() int {
	n := 0
	_ = s.with(func(cs *C.gemfa_session) error {
		n = int(C.gemfa_session_n_tokens(cs))
		return nil
	})
	return n
}

// MaxContext returns the most tokens the session holds (0 when closed).
func (s *Session) MaxContext() int {
	n := 0
	_ = s.with(func(cs *C.gemfa_session) error {
		n = int(C.gemfa_session_max_context(cs))
		return nil
	})
	return n
}

// KVType returns how the session stores keys and values (KVF32 or KVF16).
func (s *Session) KVType() KVType {
	k := KVF32
	_ = s.with(func(cs *C.gemfa_session) error {
		if C.gemfa_session_kv_type(cs) == C.GEMFA_KV_F16 {
			k = KVF16
		}
		return nil
	})
	return k
}

// KVBytes returns the bytes of the session's K/V stores alone.
func (s *Session) KVBytes() int64 {
	var n int64
	_ = s.with(func(cs *C.gemfa_session) error {
		n = int64(C.gemfa_session_kv_bytes(cs))
		return nil
	})
	return n
}

// MemoryBytes returns the bytes of KV cache and state of the session.
func (s *Session) MemoryBytes() int64 {
	var n int64
	_ = s.with(func(cs *C.gemfa_session) error {
		n = int64(C.gemfa_session_memory_bytes(cs))
		return nil
	})
	return n
}

// Reset empties the session (position 0) and keeps its memory.
func (s *Session) Reset() error {
	return s.with(func(cs *C.gemfa_session) error {
		C.gemfa_session_reset(cs)
		return nil
	})
}

// Fork returns a deep copy on the same context (e.g. to reuse a decoded
// system prompt).
func (s *Session) Fork() (*Session, error) {
	var out *Session
	err := s.with(func(cs *C.gemfa_session) error {
		if _, err := s.ctx.h.acquire(); err != nil { // the fork's hold on the context
			return err
		}
		var f *C.gemfa_session
		if err := call(func() C.gemfa_status { return C.gemfa_session_fork(cs, &f) }); err != nil {
			s.ctx.h.release()
			return err
		}
		out = s.ctx.wrapSession(f)
		return nil
	})
	return out, err
}
