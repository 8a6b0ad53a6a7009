package gemfa

/*
#include <gemfa.h>
*/
import "C"

import (
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Sampler picks the next token from logits: temperature, top-k, top-p,
// min-p, penalties, logit bias and a seeded generator (the same seed gives
// the same draws everywhere). Calls are serialized by a mutex. It keeps no
// reference to a model.
type Sampler struct {
	owner
	mu         sync.Mutex
	constraint *JSONConstraint // attached; holds a reference on its handle
}

// SamplerOption is a setting applied by NewSampler or Sampler.Apply.
type SamplerOption func(*Sampler) error

// Temperature: t >= 0; 0 = greedy (argmax after penalties and bias).
func Temperature(t float32) SamplerOption {
	return func(s *Sampler) error { return s.SetTemperature(t) }
}

// TopK: k >= 0; 0 = off.
func TopK(k int) SamplerOption { return func(s *Sampler) error { return s.SetTopK(k) } }

// TopP: 0 < p <= 1; 1 = off.
func TopP(p float32) SamplerOption { return func(s *Sampler) error { return s.SetTopP(p) } }

// MinP: 0 <= p <= 1; 0 = off.
func MinP(p float32) SamplerOption { return func(s *Sampler) error { return s.SetMinP(p) } }

// Penalties: repetition (> 0, 1 = off), OpenAI frequency and presence
// penalties over the last lastN history tokens (0 = all).
func Penalties(repetition, frequency, presence float32, lastN int) SamplerOption {
	return func(s *Sampler) error { return s.SetPenalties(repetition, frequency, presence, lastN) }
}

// LogitBias adds bias to the logit of id; float32(math.Inf(-1)) bans it.
func LogitBias(id int32, bias float32) SamplerOption {
	return func(s *Sampler) error { return s.SetLogitBias(id, bias) }
}

// Seed restarts the generator with seed.
func Seed(seed uint64) SamplerOption { return func(s *Sampler) error { return s.SetSeed(seed) } }

// NewSampler creates a sampler. With a model its defaults come from the
// model's generation_config.json (greedy when do_sample is false); with nil,
// neutral settings (temperature 1, no truncation, no penalties). The options
// are applied in order.
func NewSampler(m *Model, opts ...SamplerOption) (*Sampler, error) {
	var cm *C.gemfa_model
	if m != nil {
		p, err := m.ptr()
		if err != nil {
			return nil, err
		}
		defer m.h.release()
		cm = p
	}
	var cs *C.gemfa_sampler
	if err := call(func() C.gemfa_status { return C.gemfa_sampler_new(cm, &cs) }); err != nil {
		return nil, err
	}
	s := &Sampler{}
	s.init(newHandle(unsafe.Pointer(cs), "sampler", func(p unsafe.Pointer) { C.gemfa_sampler_free((*C.gemfa_sampler)(p)) }))
	runtime.SetFinalizer(s, (*Sampler).Close)
	if err := s.Apply(opts...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close frees the sampler (detaching its constraint); idempotent.
func (s *Sampler) Close() error {
	if s == nil {
		return nil
	}
	if !s.closed.Load() {
		_ = s.SetConstraint(nil)
	}
	s.close()
	return nil
}

// SetConstraint attaches c (nil detaches): every sampled token then
// continues c's JSON text, and the sampler advances c by each token it
// returns. The sampler keeps c alive while attached.
func (s *Sampler) SetConstraint(c *JSONConstraint) error {
	var cp unsafe.Pointer
	if c != nil {
		p, err := c.use()
		if err != nil {
			return err
		}
		cp = p // the reference is kept while attached
	}
	err := s.set(func(cs *C.gemfa_sampler) C.gemfa_status {
		return C.gemfa_sampler_set_constraint(cs, (*C.gemfa_constraint)(cp))
	})
	if err != nil {
		if c != nil {
			c.h.release()
		}
		return err
	}
	s.mu.Lock()
	old := s.constraint
	s.constraint = c
	s.mu.Unlock()
	if old != nil {
		old.h.release()
	}
	return nil
}

// Constraint returns the attached constraint, or nil.
func (s *Sampler) Constraint() *JSONConstraint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.constraint
}

// Apply applies options in order, stopping at the first error.
func (s *Sampler) Apply(opts ...SamplerOption) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sampler) set(fn func(cs *C.gemfa_sampler) C.gemfa_status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.use()
	if err != nil {
		return err
	}
	defer s.h.release()
	return call(func() C.gemfa_status { return fn((*C.gemfa_sampler)(p)) })
}

func int32Arg(v int, name string) (C.int32_t, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, argError("%s %d is out of range", name, v)
	}
	return C.int32_t(v), nil
}

// SetTemperature: t >= 0; 0 = greedy.
func (s *Sampler) SetTemperature(t float32) error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_set_temperature(cs, C.float(t)) })
}

// SetTopK: k >= 0; 0 = off.
func (s *Sampler) SetTopK(k int) error {
	ck, err := int32Arg(k, "top_k")
	if err != nil {
		return err
	}
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_set_top_k(cs, ck) })
}

// SetTopP: 0 < p <= 1; 1 = off.
func (s *Sampler) SetTopP(p float32) error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_set_top_p(cs, C.float(p)) })
}

// SetMinP: 0 <= p <= 1; 0 = off.
func (s *Sampler) SetMinP(p float32) error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_set_min_p(cs, C.float(p)) })
}

// SetPenalties sets the repetition, frequency and presence penalties over
// the last lastN history tokens (0 = all).
func (s *Sampler) SetPenalties(repetition, frequency, presence float32, lastN int) error {
	n, err := int32Arg(lastN, "last_n")
	if err != nil {
		return err
	}
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status {
		return C.gemfa_sampler_set_penalties(cs, C.float(repetition), C.float(frequency), C.float(presence), n)
	})
}

// SetLogitBias adds bias to id's logit (replacing an earlier bias for it).
func (s *Sampler) SetLogitBias(id int32, bias float32) error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status {
		return C.gemfa_sampler_set_logit_bias(cs, C.int32_t(id), C.float(bias))
	})
}

// ClearLogitBias removes every logit bias.
func (s *Sampler) ClearLogitBias() error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_clear_logit_bias(cs) })
}

// SetSeed restarts the generator.
func (s *Sampler) SetSeed(seed uint64) error {
	return s.set(func(cs *C.gemfa_sampler) C.gemfa_status { return C.gemfa_sampler_set_seed(cs, C.uint64_t(seed)) })
}

func floatsPtr(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

// Sample picks a token from logits; history is what the penalties see.
// Errors: ErrInvalidArgument (no logits, no finite logit), ErrClosed.
func (s *Sampler) Sample(logits []float32, history []int32) (int32, error) {
	var id C.int32_t
	err := s.set(func(cs *C.gemfa_sampler) C.gemfa_status {
		return C.gemfa_sample(cs, floatsPtr(logits), C.size_t(len(logits)), idsPtr(history), C.size_t(len(history)), &id)
	})
	return int32(id), err
}

// SampleSession picks the next token from a session's last logits with its
// tokens as history, without copying them.
func (s *Sampler) SampleSession(sess *Session) (int32, error) {
	var id int32
	err := sess.with(func(cs *C.gemfa_session) error {
		var logits *C.float
		var nv C.size_t
		var hist *C.int32_t
		var nh C.size_t
		if err := call(func() C.gemfa_status { return C.gemfa_session_logits(cs, &logits, &nv) }); err != nil {
			return err
		}
		if logits == nil {
			return argError("the session is empty: decode a prompt first")
		}
		if err := call(func() C.gemfa_status { return C.gemfa_session_tokens(cs, &hist, &nh) }); err != nil {
			return err
		}
		var cid C.int32_t
		if err := s.set(func(smp *C.gemfa_sampler) C.gemfa_status {
			return C.gemfa_sample(smp, logits, nv, hist, nh, &cid)
		}); err != nil {
			return err
		}
		id = int32(cid)
		return nil
	})
	return id, err
}
