package gemfa

/*
#include <stdlib.h>
#include <gemfa.h>
#include "callbacks.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// WeightType says how the big matrices are kept in memory (gemfa_weight_type).
type WeightType int

// Weight types.
const (
	WeightsAuto WeightType = 0 // as stored (BF16/F16 mapped in place)
	WeightsF32  WeightType = 1 // float32 (exactness tests)
	WeightsF16  WeightType = 2
	WeightsBF16 WeightType = 3
	WeightsInt8 WeightType = 4 // symmetric int8 in blocks of 32
)

func (w WeightType) String() string {
	switch w {
	case WeightsAuto:
		return "auto"
	case WeightsF32:
		return "f32"
	case WeightsF16:
		return "f16"
	case WeightsBF16:
		return "bf16"
	case WeightsInt8:
		return "int8"
	}
	return fmt.Sprintf("WeightType(%d)", int(w))
}

// ParseWeightType maps "auto", "f32", "f16", "bf16" or "int8" to a WeightType.
func ParseWeightType(s string) (WeightType, error) {
	for w := WeightsAuto; w <= WeightsInt8; w++ {
		if w.String() == s {
			return w, nil
		}
	}
	return 0, argError("unknown weight type %q (auto, f32, f16, bf16, int8)", s)
}

// LoadOptions configures Load. The zero value (or nil) means defaults.
type LoadOptions struct {
	Weights   WeightType // WeightsAuto by default
	VocabOnly bool       // load only the tokenizer, template and generation settings
	Threads   int        // threads for weight conversion; 0 = all cores
	// MatFormer, if set, loads only this sub-model: "e2b", or
	// "ffn=W[,W...][:skip=I[,I...]]" (docs/matformer.md).
	MatFormer string
	// Progress, if set, is called on the loading goroutine with the fraction
	// done (0..1) and a stage name; returning false cancels the load
	// (ErrCancelled). A panic in it is re-raised by Load.
	Progress func(fraction float32, stage string) bool
	// LoRA lists PEFT LoRA adapters merged into the weights at load, in
	// order (docs/lora.md).
	LoRA []LoRA
}

// LoRA is one adapter for LoadOptions: the directory holding
// adapter_config.json and adapter_model.safetensors, and the factor applied
// on top of the adapter's own alpha/r. Scale 0 means the default, 1, so
// LoRA{Dir: d} applies the adapter as trained.
type LoRA struct {
	Dir   string
	Scale float32
}

// Model is a loaded Gemma 3n checkpoint. It is immutable and safe for
// concurrent use by many goroutines.
type Model struct {
	owner
	path string
}

type progressState struct {
	fn       func(float32, string) bool
	panicked interface{}
}

//export goProgressCallback
func goProgressCallback(h C.uintptr_t, fraction C.float, stage *C.char) (stop C.int) {
	st := cgo.Handle(h).Value().(*progressState)
	defer func() {
		if r := recover(); r != nil {
			st.panicked = r
			stop = 1
		}
	}()
	if st.fn(float32(fraction), C.GoString(stage)) {
		return 0
	}
	return 1
}

// Load loads a Hugging Face Gemma 3n directory (config.json, safetensors,
// tokenizer files, chat template, generation_config.json). opts may be nil.
// Errors: ErrNotFound (the directory, config.json, the weights or a shard
// is not there; also matches fs.ErrNotExist and ErrIO), ErrIO, ErrFormat,
// ErrConfig, ErrTensorMissing, ErrTensorShape, ErrUnsupported,
// ErrModelMismatch (a LoRA adapter for another model), ErrOutOfMemory,
// ErrCancelled, ErrInvalidArgument.
func Load(path string, opts *LoadOptions) (*Model, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	for i := 0; i < len(path); i++ {
		if path[i] == 0 {
			return nil, argError("path contains a NUL byte")
		}
	}
	if opts.Threads < 0 || opts.Threads > 1<<30 {
		return nil, argError("Threads %d is out of range", opts.Threads)
	}
	var copts *C.gemfa_model_options
	if err := call(func() C.gemfa_status { return C.gemfa_model_options_new(&copts) }); err != nil {
		return nil, err
	}
	defer C.gemfa_model_options_free(copts)
	var prog *progressState
	if opts.Progress != nil {
		prog = &progressState{fn: opts.Progress}
		h := cgo.NewHandle(prog)
		defer h.Delete()
		if err := call(func() C.gemfa_status { return C.gemfa_go_set_progress(copts, C.uintptr_t(h)) }); err != nil {
			return nil, err
		}
	}
	err := call(func() C.gemfa_status {
		return C.gemfa_model_options_set_weights(copts, C.gemfa_weight_type(opts.Weights))
	})
	if err == nil {
		err = call(func() C.gemfa_status { return C.gemfa_model_options_set_vocab_only(copts, cBool(opts.VocabOnly)) })
	}
	if err == nil {
		err = call(func() C.gemfa_status { return C.gemfa_model_options_set_threads(copts, C.int(opts.Threads)) })
	}
	if err == nil && opts.MatFormer != "" {
		err = setMatFormer(copts, opts.MatFormer)
	}
	for i := 0; err == nil && i < len(opts.LoRA); i++ {
		err = addLoRA(copts, opts.LoRA[i])
	}
	if err != nil {
		return nil, err
	}
	cpath := cString(path)
	defer cFree(unsafe.Pointer(cpath))
	var cm *C.gemfa_model
	err = call(func() C.gemfa_status { return C.gemfa_model_load(cpath, copts, &cm) })
	if prog != nil && prog.panicked != nil {
		if cm != nil {
			C.gemfa_model_free(cm)
		}
		panic(prog.panicked)
	}
	if err != nil {
		return nil, err
	}
	m := &Model{path: path}
	m.init(newHandle(unsafe.Pointer(cm), "model", func(p unsafe.Pointer) { C.gemfa_model_free((*C.gemfa_model)(p)) }))
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

func addLoRA(copts *C.gemfa_model_options, l LoRA) error {
	for i := 0; i < len(l.Dir); i++ {
		if l.Dir[i] == 0 {
			return argError("LoRA directory contains a NUL byte")
		}
	}
	scale := l.Scale
	if scale == 0 {
		scale = 1
	}
	cdir := cString(l.Dir)
	defer cFree(unsafe.Pointer(cdir))
	return call(func() C.gemfa_status { return C.gemfa_model_options_add_lora(copts, cdir, C.float(scale)) })
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Close releases the model. It is idempotent, safe to call concurrently and
// on a nil *Model.
// The C model is freed at once unless contexts, sessions or detokenizer
// streams made from it are still open; then it is freed with the last of them.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.close()
	return nil
}

// Path is the directory the model was loaded from.
func (m *Model) Path() string { return m.path }

func (m *Model) ptr() (*C.gemfa_model, error) {
	p, err := m.use()
	return (*C.gemfa_model)(p), err
}

// Prop is a gemfa_model_prop: an integer fact about a model.
type Prop int

// Model properties (see gemfa.h).
const (
	PropVocabSize              Prop = 1
	PropTokenizerSize          Prop = 2
	PropContextLength          Prop = 3
	PropNLayers                Prop = 4
	PropHiddenSize             Prop = 5
	PropNHeads                 Prop = 6
	PropNKVHeads               Prop = 7
	PropHeadDim                Prop = 8
	PropSlidingWindow          Prop = 9
	PropNKVSharedLayers        Prop = 10
	PropPerLayerInputSize      Prop = 11
	PropVocabSizePerLayerInput Prop = 12
	PropBOSID                  Prop = 13
	PropEOSID                  Prop = 14
	PropPadID                  Prop = 15
	PropUnkID                  Prop = 16
	PropStartOfTurnID          Prop = 17
	PropEndOfTurnID            Prop = 18
	PropNParams                Prop = 19
	PropNParamsPLE             Prop = 20
	PropWeightBytes            Prop = 21
	PropWeightType             Prop = 22
	PropHasWeights             Prop = 23
	PropHasTokenizer           Prop = 24
	PropStoredBytesF32         Prop = 25
	PropStoredBytesF16         Prop = 26
	PropStoredBytesBF16        Prop = 27
	PropStoredBytesInt8        Prop = 28
	PropLoRAAdapters           Prop = 36 // LoRA adapters merged at load
	PropLoRAMatrices           Prop = 37 // weight matrices they changed
	PropMatFormer              Prop = 40 // 1 for a MatFormer sub-model
	PropBaseLayers             Prop = 41 // layers of the checkpoint
	PropSkippedLayers          Prop = 42 // checkpoint layers the sub-model skips
)

// Prop reads one integer property. Errors: ErrInvalidArgument (unknown
// property), ErrClosed.
func (m *Model) Prop(p Prop) (int64, error) {
	cm, err := m.ptr()
	if err != nil {
		return 0, err
	}
	defer m.h.release()
	var v C.int64_t
	if err := call(func() C.gemfa_status { return C.gemfa_model_get(cm, C.gemfa_model_prop(p), &v) }); err != nil {
		return 0, err
	}
	return int64(v), nil
}

// Info holds a model's main facts (ids are -1 when unknown).
type Info struct {
	VocabSize, TokenizerSize, ContextLength                int
	NLayers, HiddenSize, NHeads, NKVHeads, HeadDim         int
	SlidingWindow, NKVSharedLayers                         int
	BOSID, EOSID, PadID, UnkID, StartOfTurnID, EndOfTurnID int32
	NParams, NParamsPLE, WeightBytes                       int64
	WeightType                                             WeightType
	HasWeights, HasTokenizer                               bool
}

// Info reads the main properties at once.
func (m *Model) Info() (Info, error) {
	var in Info
	var firstErr error
	get := func(p Prop) int64 {
		v, err := m.Prop(p)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	}
	in.VocabSize = int(get(PropVocabSize))
	in.TokenizerSize = int(get(PropTokenizerSize))
	in.ContextLength = int(get(PropContextLength))
	in.NLayers = int(get(PropNLayers))
	in.HiddenSize = int(get(PropHiddenSize))
	in.NHeads = int(get(PropNHeads))
	in.NKVHeads = int(get(PropNKVHeads))
	in.HeadDim = int(get(PropHeadDim))
	in.SlidingWindow = int(get(PropSlidingWindow))
	in.NKVSharedLayers = int(get(PropNKVSharedLayers))
	in.BOSID = int32(get(PropBOSID))
	in.EOSID = int32(get(PropEOSID))
	in.PadID = int32(get(PropPadID))
	in.UnkID = int32(get(PropUnkID))
	in.StartOfTurnID = int32(get(PropStartOfTurnID))
	in.EndOfTurnID = int32(get(PropEndOfTurnID))
	in.NParams = get(PropNParams)
	in.NParamsPLE = get(PropNParamsPLE)
	in.WeightBytes = get(PropWeightBytes)
	in.WeightType = WeightType(get(PropWeightType))
	in.HasWeights = get(PropHasWeights) != 0
	in.HasTokenizer = get(PropHasTokenizer) != 0
	return in, firstErr
}

// LayerType is sliding-window or global attention.
type LayerType int

// Layer types.
const (
	LayerSliding LayerType = 0
	LayerFull    LayerType = 1
)

// Layer describes one decoder layer.
type Layer struct {
	Type     LayerType
	KVSource int     // the layer whose KV cache this layer reads
	FFNWidth int64   // intermediate size
	Sparsity float32 // activation sparsity target (0 = dense)
}

// Layer returns facts about decoder layer i (0-based).
func (m *Model) Layer(i int) (Layer, error) {
	if i < 0 || i > 1<<30 {
		return Layer{}, argError("layer %d is out of range", i)
	}
	cm, err := m.ptr()
	if err != nil {
		return Layer{}, err
	}
	defer m.h.release()
	var t C.gemfa_layer_type
	var kv C.int
	var w C.int64_t
	var sp C.float
	if err := call(func() C.gemfa_status { return C.gemfa_model_layer(cm, C.int(i), &t, &kv, &w, &sp) }); err != nil {
		return Layer{}, err
	}
	return Layer{Type: LayerType(t), KVSource: int(kv), FFNWidth: int64(w), Sparsity: float32(sp)}, nil
}

// EOGIDs returns the ids that end generation.
func (m *Model) EOGIDs() ([]int32, error) {
	cm, err := m.ptr()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	return queryIDs(8, func(buf *C.int32_t, cap C.size_t, n *C.size_t) C.gemfa_status {
		return C.gemfa_model_eog_ids(cm, buf, cap, n)
	})
}

// IsEOG reports whether id ends generation (false on a closed model).
func (m *Model) IsEOG(id int32) bool {
	cm, err := m.ptr()
	if err != nil {
		return false
	}
	defer m.h.release()
	return C.gemfa_model_is_eog(cm, C.int32_t(id)) != 0
}
