package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
*/
import "C"

import (
	"runtime"
	"strings"
	"unsafe"
)

func specArg(spec string) (*C.char, error) {
	if strings.IndexByte(spec, 0) >= 0 {
		return nil, argError("matformer spec contains a NUL byte")
	}
	return cString(spec), nil
}

func setMatFormer(copts *C.gemfa_model_options, spec string) error {
	cs, err := specArg(spec)
	if err != nil {
		return err
	}
	defer cFree(unsafe.Pointer(cs))
	return call(func() C.gemfa_status { return C.gemfa_model_options_set_matformer(copts, cs) })
}

// Derive returns the MatFormer sub-model spec of m ("e2b", or
// "ffn=W[,W...][:skip=I[,I...]]", indices and widths relative to m's
// layers), sharing m's weights: only the narrowed down_proj columns are
// copied. Either model may be closed first. Errors: ErrInvalidArgument (bad
// spec), ErrModelMismatch (a preset for another checkpoint shape),
// ErrNoWeights, ErrUnsupported, ErrOutOfMemory, ErrClosed.
func (m *Model) Derive(spec string) (*Model, error) {
	cs, err := specArg(spec)
	if err != nil {
		return nil, err
	}
	defer cFree(unsafe.Pointer(cs))
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	var out *C.gemfa_model
	if err := call(func() C.gemfa_status { return C.gemfa_model_derive_submodel(cm, cs, &out) }); err != nil {
		return nil, err
	}
	sub := &Model{path: m.path}
	sub.init(newHandle(unsafe.Pointer(out), "model", func(p unsafe.Pointer) { C.gemfa_model_free((*C.gemfa_model)(p)) }))
	runtime.SetFinalizer(sub, (*Model).Close)
	return sub, nil
}

// MatFormer returns the spec the model was sliced with ("" for a whole
// model). Errors: ErrClosed.
func (m *Model) MatFormer() (string, error) {
	cm, err := m.ptr()
	if err != nil {
		return "", err
	}
	defer m.h.release()
	s := C.gemfa_model_matformer(cm)
	if s == nil {
		return "", nil
	}
	return C.GoString(s), nil
}

// BaseLayer returns the checkpoint layer that decoder layer i is (i unless
// a MatFormer spec skipped layers). Errors: ErrInvalidArgument, ErrClosed.
func (m *Model) BaseLayer(i int) (int, error) {
	if i < 0 || i > 1<<30 {
		return 0, argError("layer %d is out of range", i)
	}
	cm, err := m.ptr()
	if err != nil {
		return 0, err
	}
	defer m.h.release()
	var b C.int
	if err := call(func() C.gemfa_status { return C.gemfa_model_base_layer(cm, C.int(i), &b) }); err != nil {
		return 0, err
	}
	return int(b), nil
}
