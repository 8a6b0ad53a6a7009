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

// TokenizeFlags select gemfa_tokenize options.
type TokenizeFlags uint

// Tokenize flags.
const (
	AddBOS          TokenizeFlags = 0x1 // prepend <bos>
	ParseSpecial    TokenizeFlags = 0x2 // "<start_of_turn>" in the text becomes the special id
	TokenizeDefault               = AddBOS | ParseSpecial
)

// bytesPtr returns a C view of Go bytes for the duration of a call (Go
// memory without Go pointers may be passed to C); nil for empty input.
func bytesPtr(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

func idsPtr(ids []int32) *C.int32_t {
	if len(ids) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&ids[0]))
}

// queryIDs runs a call writing int32 ids with the size-query protocol: a
// first try with guess slots, then exactly the size the library reported.
func queryIDs(guess int, fn func(buf *C.int32_t, cap C.size_t, n *C.size_t) C.gemfa_status) ([]int32, error) {
	if guess < 1 {
		guess = 1
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for attempt := 0; attempt < 4; attempt++ {
		buf := make([]int32, guess)
		var n C.size_t
		st := fn((*C.int32_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
		if st == C.GEMFA_ERR_BUFFER_TOO_SMALL {
			guess = int(n)
			if guess < 1 {
				guess = 1
			}
			continue
		}
		if err := lastError(st); err != nil {
			return nil, err
		}
		return buf[:int(n):int(n)], nil
	}
	return nil, &Error{Code: StatusBufferTooSmall, Message: "the output kept growing between size queries"}
}

// queryText is queryIDs for NUL-terminated text output.
func queryText(guess int, fn func(buf *C.char, cap C.size_t, n *C.size_t) C.gemfa_status) (string, error) {
	if guess < 16 {
		guess = 16
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for attempt := 0; attempt < 4; attempt++ {
		buf := make([]byte, guess)
		var n C.size_t
		st := fn((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
		if st == C.GEMFA_ERR_BUFFER_TOO_SMALL {
			guess = int(n) + 1
			continue
		}
		if err := lastError(st); err != nil {
			return "", err
		}
		return string(buf[:int(n)]), nil
	}
	return "", &Error{Code: StatusBufferTooSmall, Message: "the output kept growing between size queries"}
}

// Tokenize encodes text (UTF-8; it may contain NUL bytes) into token ids
// exactly as Hugging Face tokenizers does. Errors: ErrInvalidUTF8,
// ErrNoTokenizer, ErrClosed.
func (m *Model) Tokenize(text string, flags TokenizeFlags) ([]int32, error) {
	return m.TokenizeBytes([]byte(text), flags)
}

// TokenizeBytes is Tokenize for a byte slice.
func (m *Model) TokenizeBytes(text []byte, flags TokenizeFlags) ([]int32, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	p := bytesPtr(text)
	if p == nil {
		p = emptyCString()
	}
	return queryIDs(len(text)+2, func(buf *C.int32_t, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_tokenize(cm, p, C.size_t(len(text)), C.uint(flags), buf, cap, n)
	})
}

// emptyText gives zero-length text a valid pointer (the C API rejects NULL).
var emptyText [1]byte

func emptyCString() *C.char { return (*C.char)(unsafe.Pointer(&emptyText[0])) }

// Detokenize decodes ids into text as Hugging Face does; skipSpecial leaves
// out special tokens (<bos>, <end_of_turn>, ...). Errors: ErrInvalidToken,
// ErrNoTokenizer, ErrClosed.
func (m *Model) Detokenize(ids []int32, skipSpecial bool) (string, error) {
	cm, err := m.ptr()
	if err != nil {
		return "", err
	}
	defer m.h.release()
	flags := C.uint(0)
	if skipSpecial {
		flags = C.GEMFA_DETOKENIZE_SKIP_SPECIAL
	}
	return queryText(8*len(ids)+16, func(buf *C.char, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_detokenize(cm, idsPtr(ids), C.size_t(len(ids)), flags, buf, cap, n)
	})
}

// TokenPiece returns the raw piece of one id ("▁سلام", "<0xE2>", "<bos>").
func (m *Model) TokenPiece(id int32) (string, error) {
	cm, err := m.ptr()
	if err != nil {
		return "", err
	}
	defer m.h.release()
	return queryText(64, func(buf *C.char, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_token_piece(cm, C.int32_t(id), buf, cap, n)
	})
}

// TokenID returns the id of an exact piece or added-token text; ok is false
// when there is none.
func (m *Model) TokenID(piece string) (id int32, ok bool, err error) {
	cm, err := m.ptr()
	if err != nil {
		return 0, false, err
	}
	defer m.h.release()
	b := []byte(piece)
	p := bytesPtr(b)
	if p == nil {
		p = emptyCString()
	}
	var out C.int32_t
	if err := call(func() C.gemfa_status { return C.gemfa_token_id(cm, p, C.size_t(len(b)), &out) }); err != nil {
		return 0, false, err
	}
	return int32(out), out >= 0, nil
}

// Message is one chat message. Role is "system", "user", "assistant" (or
// "model"); Content is UTF-8 text (NUL bytes allowed).
type Message struct {
	Role    string
	Content string
}

// cMessages copies messages into C memory (the array holds pointers, so it
// may not live in Go memory); free releases everything.
func cMessages(msgs []Message) (arr *C.gemfa_message, free func(), err error) {
	n := len(msgs)
	size := int(unsafe.Sizeof(C.gemfa_message{})) * n
	base := cAlloc(size)
	slots := unsafe.Slice((*C.gemfa_message)(base), n)
	var owned []unsafe.Pointer
	free = func() {
		for _, p := range owned {
			cFree(p)
		}
		cFree(base)
	}
	for i, m := range msgs {
		for j := 0; j < len(m.Role); j++ {
			if m.Role[j] == 0 {
				free()
				return nil, nil, &Error{Code: StatusTemplate, Message: "a role contains a NUL byte"}
			}
		}
		role := cString(m.Role)
		content := cString(m.Content)
		owned = append(owned, unsafe.Pointer(role), unsafe.Pointer(content))
		slots[i].role = role
		slots[i].content = content
		slots[i].content_len = C.size_t(len(m.Content))
	}
	return (*C.gemfa_message)(base), free, nil
}

// ApplyChatTemplate renders messages with the Gemma 3n chat template
// (starting with "<bos>"; tokenize the result without AddBOS). Errors:
// ErrTemplate (roles out of order, no messages), ErrInvalidUTF8,
// ErrNoTokenizer, ErrClosed.
func (m *Model) ApplyChatTemplate(msgs []Message, addGenerationPrompt bool) (string, error) {
	cm, err := m.ptr()
	if err != nil {
		return "", err
	}
	defer m.h.release()
	arr, free, err := cMessages(msgs)
	if err != nil {
		return "", err
	}
	defer free()
	guess := 64
	for _, msg := range msgs {
		guess += len(msg.Content) + 64
	}
	return queryText(guess, func(buf *C.char, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_apply_chat_template(cm, arr, C.size_t(len(msgs)), cBool(addGenerationPrompt), buf, cap, n)
	})
}

// ChatTokenize renders and tokenizes in one step, with exactly one <bos>.
// injectionSafe keeps special-token text typed inside contents as plain text
// (false matches Hugging Face).
func (m *Model) ChatTokenize(msgs []Message, addGenerationPrompt, injectionSafe bool) ([]int32, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	arr, free, err := cMessages(msgs)
	if err != nil {
		return nil, err
	}
	defer free()
	flags := C.uint(0)
	if injectionSafe {
		flags = C.GEMFA_CHAT_INJECTION_SAFE
	}
	guess := 16
	for _, msg := range msgs {
		guess += len(msg.Content) + 16
	}
	return queryIDs(guess, func(buf *C.int32_t, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_chat_tokenize(cm, arr, C.size_t(len(msgs)), cBool(addGenerationPrompt), flags, buf, cap, n)
	})
}

// DetokStream turns ids into text one at a time, holding back incomplete
// UTF-8. It keeps its model alive; calls are serialized by a mutex.
type DetokStream struct {
	owner
	mu sync.Mutex
}

// NewDetokStream creates a streaming detokenizer.
func (m *Model) NewDetokStream(skipSpecial bool) (*DetokStream, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	flags := C.uint(0)
	if skipSpecial {
		flags = C.GEMFA_DETOKENIZE_SKIP_SPECIAL
	}
	var cs *C.gemfa_detok_stream
	if err := call(func() C.gemfa_status { return C.gemfa_detok_stream_new(cm, flags, &cs) }); err != nil {
		m.h.release()
		return nil, err
	}
	// the count taken by ptr() stays with the stream: it points at the model
	d := &DetokStream{}
	d.init(newHandle(unsafe.Pointer(cs), "detokenizer stream",
		func(p unsafe.Pointer) { C.gemfa_detok_stream_free((*C.gemfa_detok_stream)(p)) }, m.h))
	runtime.SetFinalizer(d, (*DetokStream).Close)
	return d, nil
}

// Close frees the stream; idempotent.
func (d *DetokStream) Close() error {
	if d == nil {
		return nil
	}
	d.close()
	return nil
}

func (d *DetokStream) out(fn func(cs *C.gemfa_detok_stream, text **C.char, n *C.size_t) C.gemfa_status) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.use()
	if err != nil {
		return "", err
	}
	defer d.h.release()
	var text *C.char
	var n C.size_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := lastError(fn((*C.gemfa_detok_stream)(p), &text, &n)); err != nil {
		return "", err
	}
	return C.GoStringN(text, C.int(n)), nil
}

// Feed adds one id and returns the text it completes (often ""). An invalid
// id returns ErrInvalidToken and leaves the stream unchanged.
func (d *DetokStream) Feed(id int32) (string, error) {
	return d.out(func(cs *C.gemfa_detok_stream, text **C.char, n *C.size_t) C.gemfa_status {
		return C.gemfa_detok_stream_feed(cs, C.int32_t(id), text, n)
	})
}

// Flush ends the stream: held-back bytes come out as U+FFFD each.
func (d *DetokStream) Flush() (string, error) {
	return d.out(func(cs *C.gemfa_detok_stream, text **C.char, n *C.size_t) C.gemfa_status {
		return C.gemfa_detok_stream_flush(cs, text, n)
	})
}

// Reset forgets held-back bytes and history.
func (d *DetokStream) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.use()
	if err != nil {
		return err
	}
	defer d.h.release()
	C.gemfa_detok_stream_reset((*C.gemfa_detok_stream)(p))
	return nil
}
