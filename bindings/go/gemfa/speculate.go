package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
#include "callbacks.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// DraftFunc proposes up to max ids to follow tokens (the session's tokens
// and the pending one). Its proposals count as certain; returning none
// makes the step a plain one-token step.
type DraftFunc func(tokens []int32, max int) []int32

type draftState struct {
	fn       DraftFunc
	panicked interface{}
}

//export goDraftCallback
func goDraftCallback(h C.uintptr_t, tokens *C.int32_t, n C.size_t, ids *C.int32_t, max C.size_t) (r C.int) {
	st := cgo.Handle(h).Value().(*draftState)
	defer func() {
		if p := recover(); p != nil {
			st.panicked = p
			r = -1
		}
	}()
	in := make([]int32, int(n))
	if n > 0 {
		copy(in, unsafe.Slice((*int32)(unsafe.Pointer(tokens)), int(n)))
	}
	got := st.fn(in, int(max))
	if len(got) > int(max) {
		return C.int(max) + 1 // the library reports it (ErrInvalidArgument)
	}
	if len(got) > 0 {
		copy(unsafe.Slice((*int32)(unsafe.Pointer(ids)), int(max)), got)
	}
	return C.int(len(got))
}

// SpeculatorStats are a speculator's counters since it was created.
type SpeculatorStats struct {
	Steps, Drafted, Accepted, Emitted, TargetRows, DraftRows uint64
	DraftSeconds, VerifySeconds                              float64
}

// Acceptance is Accepted / Drafted (0 before any draft).
func (s SpeculatorStats) Acceptance() float64 {
	if s.Drafted == 0 {
		return 0
	}
	return float64(s.Accepted) / float64(s.Drafted)
}

// Speculator generates with a session and a cheap draft: each Step returns
// 1 to k+1 tokens for one batched pass of the session's model. Greedy
// output equals plain greedy decoding; sampled tokens follow the model's
// distribution exactly (docs/speculative.md). The last token of a step is
// pending (not decoded yet): do not use the session between steps; call
// Flush (decodes it) or Reset (drops it) first. It keeps the session and
// the draft model alive and is serialized with the session's context.
type Speculator struct {
	owner
	s     *Session
	k     int
	draft *draftState
}

// NewSpeculator drafts with a model of the same vocabulary (a MatFormer
// sub-model, a small checkpoint, or the session's model itself), k tokens
// per step (1..32). Errors: ErrInvalidArgument, ErrNoWeights,
// ErrModelMismatch, ErrClosed.
func NewSpeculator(s *Session, draft *Model, k int) (*Speculator, error) {
	dm, err := draft.ptr()
	if err != nil {
		return nil, err
	}
	sp := &Speculator{s: s, k: k}
	if err := sp.open(func(cs *C.gemfa_session, out **C.gemfa_speculator) C.gemfa_status {
		return C.gemfa_speculator_new(cs, dm, kArg(k), out)
	}, draft.h); err != nil {
		draft.h.release()
		return nil, err
	}
	return sp, nil // keeps the draft count taken by ptr()
}

// NewSpeculatorFunc drafts with fn (prompt lookup, a cache, a test
// oracle). A panic in fn is re-raised by Step.
func NewSpeculatorFunc(s *Session, fn DraftFunc, k int) (*Speculator, error) {
	if fn == nil {
		return nil, argError("the draft function is nil")
	}
	st := &draftState{fn: fn}
	h := cgo.NewHandle(st)
	sp := &Speculator{s: s, k: k, draft: st}
	if err := sp.open(func(cs *C.gemfa_session, out **C.gemfa_speculator) C.gemfa_status {
		return C.gemfa_go_speculator_new_fn(cs, C.uintptr_t(h), kArg(k), out)
	}, nil); err != nil {
		h.Delete()
		return nil, err
	}
	sp.h.onFree = h.Delete
	return sp, nil
}

func kArg(k int) C.int {
	if k < -1 || k > 1<<30 {
		return -1 // out of range either way: the library refuses it
	}
	return C.int(k)
}

func (sp *Speculator) open(fn func(*C.gemfa_session, **C.gemfa_speculator) C.gemfa_status, draft *handle) error {
	var out *C.gemfa_speculator
	err := sp.s.with(func(cs *C.gemfa_session) error {
		return call(func() C.gemfa_status { return fn(cs, &out) })
	})
	if err != nil {
		return err
	}
	if _, err := sp.s.use(); err != nil { // a count on the session for the speculator
		C.gemfa_speculator_free(out)
		return err
	}
	parents := []*handle{sp.s.h}
	if draft != nil {
		parents = append(parents, draft)
	}
	ctx := sp.s.ctx
	free := func(p unsafe.Pointer) {
		ctx.mu.Lock()
		defer ctx.mu.Unlock()
		C.gemfa_speculator_free((*C.gemfa_speculator)(p))
	}
	sp.init(newHandle(unsafe.Pointer(out), "speculator", free, parents...))
	runtime.SetFinalizer(sp, (*Speculator).Close)
	return nil
}

// Close frees the speculator (its draft context and session); idempotent.
func (sp *Speculator) Close() error {
	if sp == nil {
		return nil
	}
	sp.close()
	return nil
}

func (sp *Speculator) with(fn func(p *C.gemfa_speculator) error) error {
	p, err := sp.use()
	if err != nil {
		return err
	}
	defer sp.h.release()
	sp.s.ctx.mu.Lock()
	defer sp.s.ctx.mu.Unlock()
	return fn((*C.gemfa_speculator)(p))
}

// K returns the tokens drafted per step.
func (sp *Speculator) K() int { return sp.k }

// SetK changes k for later steps (1..32).
func (sp *Speculator) SetK(k int) error {
	err := sp.with(func(p *C.gemfa_speculator) error {
		return call(func() C.gemfa_status { return C.gemfa_speculator_set_k(p, kArg(k)) })
	})
	if err == nil {
		sp.k = k
	}
	return err
}

// Step drafts, verifies and returns 1 to k+1 new tokens; cut them at the
// first end-of-generation id yourself. ctx cancels a running step.
// Errors: ErrContextFull (the pending token does not fit), ErrUnsupported
// (a constraint on the sampler), ErrCancelled, ErrInvalidArgument (the
// session was used since the last step), ErrClosed; nothing changed then.
func (sp *Speculator) Step(ctx context.Context, smp *Sampler) ([]int32, error) {
	if smp == nil {
		return nil, argError("the sampler is nil")
	}
	smp.mu.Lock()
	defer smp.mu.Unlock()
	cs, err := smp.use()
	if err != nil {
		return nil, err
	}
	defer smp.h.release()
	buf := make([]int32, sp.k+1)
	var n C.size_t
	err = sp.with(func(p *C.gemfa_speculator) error {
		return sp.s.ctx.run(ctx, func() C.gemfa_status {
			return C.gemfa_speculator_step(p, (*C.gemfa_sampler)(cs), (*C.int32_t)(unsafe.Pointer(&buf[0])),
				C.size_t(len(buf)), &n)
		})
	})
	if sp.draft != nil && sp.draft.panicked != nil {
		p := sp.draft.panicked
		sp.draft.panicked = nil
		panic(p)
	}
	if err != nil {
		return nil, err
	}
	return buf[:int(n)], nil
}

// Flush decodes the pending token, so the session holds every returned token.
func (sp *Speculator) Flush(ctx context.Context) error {
	return sp.with(func(p *C.gemfa_speculator) error {
		return sp.s.ctx.run(ctx, func() C.gemfa_status { return C.gemfa_speculator_flush(p) })
	})
}

// Reset forgets the pending token (the session is not touched).
func (sp *Speculator) Reset() error {
	return sp.with(func(p *C.gemfa_speculator) error {
		C.gemfa_speculator_reset(p)
		return nil
	})
}

// Stats returns the counters.
func (sp *Speculator) Stats() (SpeculatorStats, error) {
	var st C.gemfa_speculator_stats
	err := sp.with(func(p *C.gemfa_speculator) error {
		return call(func() C.gemfa_status { return C.gemfa_speculator_get_stats(p, &st) })
	})
	return SpeculatorStats{
		Steps: uint64(st.steps), Drafted: uint64(st.drafted), Accepted: uint64(st.accepted),
		Emitted: uint64(st.emitted), TargetRows: uint64(st.target_rows),
		DraftRows: uint64(st.draft_rows), DraftSeconds: float64(st.draft_seconds),
		VerifySeconds: float64(st.verify_seconds),
	}, err
}
