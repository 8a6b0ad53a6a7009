package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// handle owns one C object. Its count starts at 1 (the Go object that made
// it); each child handle (a session's context, a context's model) holds one
// count on its parents, and every call holds one while it runs. The C free
// function runs when the count reaches 0, so Close is deterministic, a model
// closed while its sessions live is freed after the last of them, and a
// Close racing with a call on another goroutine frees after that call.
type handle struct {
	mu      sync.Mutex
	refs    int
	ptr     unsafe.Pointer
	free    func(unsafe.Pointer)
	parents []*handle
	kind    string
	onFree  func() // runs after the C free (releases cgo.Handles the C side used)
}

// liveHandles counts C objects not yet freed (tests check it returns to 0).
var liveHandles int64

func newHandle(ptr unsafe.Pointer, kind string, free func(unsafe.Pointer), parents ...*handle) *handle {
	atomic.AddInt64(&liveHandles, 1)
	return &handle{refs: 1, ptr: ptr, free: free, parents: parents, kind: kind}
}

// acquire adds a reference for one call and returns the C pointer.
func (h *handle) acquire() (unsafe.Pointer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refs <= 0 {
		return nil, closedError("the " + h.kind)
	}
	h.refs++
	return h.ptr, nil
}

// release drops a reference; the last one frees the C object and then
// releases the parents.
func (h *handle) release() {
	h.mu.Lock()
	if h.refs <= 0 {
		h.mu.Unlock()
		return
	}
	h.refs--
	if h.refs > 0 {
		h.mu.Unlock()
		return
	}
	ptr := h.ptr
	h.ptr = nil
	h.mu.Unlock()
	h.free(ptr)
	atomic.AddInt64(&liveHandles, -1)
	if h.onFree != nil {
		h.onFree()
	}
	for _, p := range h.parents {
		p.release()
	}
}

func (h *handle) alive() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refs > 0
}

// owner is embedded in the public types: idempotent Close and the finalizer
// safety net.
type owner struct {
	h      *handle
	once   sync.Once
	closed atomic.Bool
}

func (o *owner) init(h *handle) { o.h = h }

// close releases the owner's reference once.
func (o *owner) close() {
	o.once.Do(func() {
		o.closed.Store(true)
		o.h.release()
	})
}

// use acquires the handle for one call; the caller must call o.h.release().
func (o *owner) use() (unsafe.Pointer, error) {
	if o.closed.Load() {
		return nil, closedError("the " + o.h.kind)
	}
	return o.h.acquire()
}

// call runs a fallible C call on a locked OS thread, so that
// gemfa_last_error (thread-local) is read on the thread that failed.
func call(fn func() C.gemfa_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return lastError(fn())
}

// C memory the binding allocates itself goes through cAlloc/cFree so tests
// can check that none of it leaks (cAllocated returns to 0).
var cAllocated int64

func cBytes(b []byte) *C.char {
	p := (*C.char)(C.malloc(C.size_t(len(b) + 1)))
	if len(b) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(p)), len(b)), b)
	}
	*(*byte)(unsafe.Add(unsafe.Pointer(p), len(b))) = 0
	atomic.AddInt64(&cAllocated, 1)
	return p
}

func cString(s string) *C.char { return cBytes([]byte(s)) }

func cAlloc(n int) unsafe.Pointer {
	if n == 0 {
		n = 1
	}
	atomic.AddInt64(&cAllocated, 1)
	return C.calloc(1, C.size_t(n))
}

func cFree(p unsafe.Pointer) {
	if p != nil {
		atomic.AddInt64(&cAllocated, -1)
		C.free(p)
	}
}
