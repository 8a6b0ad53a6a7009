package gemfa

import (
	"context"
	"errors"
)

// Prompt is what Session.Generate starts from; make one with UserMessage,
// Chat, Text or Tokens. The zero value continues from the session's state.
type Prompt struct {
	kind int
	text string
	msgs []Message
	ids  []int32
}

const (
	promptContinue = iota
	promptChat
	promptText
	promptTokens
)

// UserMessage is a one-message chat prompt from the user.
func UserMessage(text string) Prompt {
	return Prompt{kind: promptChat, msgs: []Message{{Role: "user", Content: text}}}
}

// Chat is a chat prompt rendered with the model's chat template. On a
// session that already holds a conversation, pass only the new messages:
// the previous model turn is closed and the new turn added without <bos>.
func Chat(msgs ...Message) Prompt { return Prompt{kind: promptChat, msgs: msgs} }

// Text is raw text, tokenized with special tokens parsed; on an empty session
// <bos> is put first unless the text starts with it.
func Text(text string) Prompt { return Prompt{kind: promptText, text: text} }

// Tokens is a prompt of token ids used as they are.
func Tokens(ids []int32) Prompt { return Prompt{kind: promptTokens, ids: ids} }

// Continue generates from the session's current state (it must not be empty).
func Continue() Prompt { return Prompt{} }

// StopGeneration may be returned by a Generate callback to end the
// generation early without an error.
var StopGeneration = errors.New("gemfa: stop generation")

// StopReason says why a generation ended.
type StopReason string

// Stop reasons.
const (
	StopEOG         StopReason = "eog"          // an end-of-generation id was sampled (not appended)
	StopLength      StopReason = "length"       // MaxNewTokens reached
	StopContextFull StopReason = "context_full" // the session cannot hold another token
	StopString      StopReason = "stop_string"  // one of GenerateOptions.Stop appeared in the text
	StopCallback    StopReason = "stopped"      // the callback returned StopGeneration
	StopError       StopReason = "error"        // an error (cancellation included) ended it
)

// GenerateOptions configures Session.Generate. The zero value (or nil) means
// defaults.
type GenerateOptions struct {
	MaxNewTokens  int             // tokens to generate at most; 0 = 256
	Sampler       *Sampler        // used as is when set
	Sampling      []SamplerOption // else a sampler with the model's defaults plus these
	KeepSpecial   bool            // keep special tokens in the text (default: skipped)
	InjectionSafe bool            // chat contents are plain text (see ChatTokenize)
	// Stop ends the text just before the first of these strings to appear,
	// even across tokens (StopString); the session keeps every token.
	Stop []string
	// Logprobs records each generated token's log-probability under the raw
	// logits in Generation.Logprobs, with its TopLogprobs (0..MaxTopLogprobs)
	// most likely alternatives.
	Logprobs    bool
	TopLogprobs int
	// JSONSchema, when not "", is a JSON Schema (JSON text; "{}" = any JSON
	// value) the answer must validate against: only tokens that continue such
	// a value are sampled and the end token only once it is complete, so
	// StopEOG means Text parses and validates; StopLength or StopContextFull
	// mean the value was cut. With Sampler set, the constraint is attached to
	// it for this generation only.
	JSONSchema string
}

// Generation reports what Session.Generate did.
type Generation struct {
	PromptIDs  []int32    // ids decoded before generating
	IDs        []int32    // generated ids, all appended to the session
	Text       string     // all the text passed to the callback
	StopReason StopReason // why it ended
	// Logprobs (with GenerateOptions.Logprobs): one entry per id of IDs.
	Logprobs []LogprobEntry
}

// DefaultMaxNewTokens is used when GenerateOptions.MaxNewTokens is 0.
const DefaultMaxNewTokens = 256

// Generate decodes the prompt, then samples and decodes one token at a
// time, passing each completed piece of text to fn (which may be nil) as
// soon as its token is in the session. Text that could still become a stop
// string is passed on only once it cannot. It stops at an end-of-generation id
// (not appended), after MaxNewTokens, when the session is full, at a stop
// string (StopString; the text leaves it out), when fn
// returns StopGeneration, or with an error: fn's own error, or ErrCancelled
// (also matching ctx.Err()) when ctx is done, checked during every decode
// and between tokens. The returned Generation is valid in every case.
func (s *Session) Generate(ctx context.Context, prompt Prompt, opts *GenerateOptions, fn func(piece string) error) (*Generation, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts == nil {
		opts = &GenerateOptions{}
	}
	g := &Generation{StopReason: StopError}
	maxNew := opts.MaxNewTokens
	if maxNew < 0 {
		return g, argError("MaxNewTokens %d is negative", maxNew)
	}
	if maxNew == 0 {
		maxNew = DefaultMaxNewTokens
	}
	if opts.Sampler != nil && len(opts.Sampling) > 0 {
		return g, argError("set either Sampler or Sampling, not both")
	}
	if opts.TopLogprobs < 0 || opts.TopLogprobs > MaxTopLogprobs || (opts.TopLogprobs > 0 && !opts.Logprobs) {
		return g, argError("TopLogprobs %d needs Logprobs and must be in [0, %d]", opts.TopLogprobs, MaxTopLogprobs)
	}
	var stops *StopMatcher
	if len(opts.Stop) > 0 {
		var err error
		if stops, err = NewStopMatcher(opts.Stop...); err != nil {
			return g, err
		}
		defer stops.Close()
	}
	m := s.Model()
	ids, err := s.promptIDs(prompt, opts.InjectionSafe)
	if err != nil {
		return g, err
	}
	g.PromptIDs = ids
	var constraint *JSONConstraint
	if opts.JSONSchema != "" { // compiled first: a bad schema fails before anything runs
		if constraint, err = NewJSONConstraint(m, opts.JSONSchema); err != nil {
			return g, err
		}
		defer constraint.Close()
	}
	smp := opts.Sampler
	if smp == nil {
		if smp, err = NewSampler(m, opts.Sampling...); err != nil {
			return g, err
		}
		defer smp.Close()
	}
	if constraint != nil {
		previous := smp.Constraint()
		if err := smp.SetConstraint(constraint); err != nil {
			return g, err
		}
		defer smp.SetConstraint(previous)
	}
	if len(ids) > 0 {
		if err := s.decodeQuiet(ctx, ids); err != nil {
			return g, err
		}
	}
	stream, err := m.NewDetokStream(!opts.KeepSpecial)
	if err != nil {
		return g, err
	}
	defer stream.Close()
	hit := false
	emit := func(piece string) error {
		if stops != nil {
			var err error
			if piece, hit, err = stops.Feed(piece); err != nil {
				return err
			}
		}
		if piece == "" {
			return nil
		}
		g.Text += piece
		if fn == nil {
			return nil
		}
		return fn(piece)
	}
	reason := StopLength
	maxCtx := s.MaxContext()
	lpCache := &tokenBytesCache{m: m, cache: map[int32][]byte{}}
	for i := 0; i < maxNew; i++ {
		if err := ctx.Err(); err != nil {
			return g, &Error{Code: StatusCancelled, Message: "the context.Context is done: " + err.Error(), cause: err}
		}
		id, err := smp.SampleSession(s)
		if err != nil {
			return g, err
		}
		if m.IsEOG(id) {
			reason = StopEOG
			break
		}
		if s.NTokens() >= maxCtx {
			reason = StopContextFull
			break
		}
		if opts.Logprobs {
			if err := lpCache.record(s, id, opts.TopLogprobs, &g.Logprobs); err != nil {
				return g, err
			}
		}
		piece, err := stream.Feed(id)
		if err != nil {
			return g, err
		}
		if err := s.decodeQuiet(ctx, []int32{id}); err != nil {
			return g, err
		}
		g.IDs = append(g.IDs, id)
		if err := emit(piece); err != nil {
			if errors.Is(err, StopGeneration) {
				g.StopReason = StopCallback
				return g, nil
			}
			return g, err
		}
		if hit {
			g.StopReason = StopString
			return g, nil
		}
	}
	tail, err := stream.Flush()
	if err != nil {
		return g, err
	}
	g.StopReason = reason
	if stops != nil {
		// the detokenizer's tail goes through the matcher; what the matcher
		// still holds then can no longer become a stop string
		if tail, hit, err = stops.Feed(tail); err != nil {
			return g, err
		}
		if !hit {
			rest, err := stops.Flush()
			if err != nil {
				return g, err
			}
			tail += rest
		}
		stops = nil // emit passes the tail on as it is
	}
	if hit {
		g.StopReason = StopString
	}
	if err := emit(tail); err != nil && !errors.Is(err, StopGeneration) {
		g.StopReason = StopError
		return g, err
	}
	return g, nil
}

func (s *Session) decodeQuiet(ctx context.Context, ids []int32) error {
	return s.with(func(cs *cSession) error {
		return s.ctx.run(ctx, func() cStatus { return decodeNoLogits(cs, ids) })
	})
}

// promptIDs tokenizes a prompt for this session's state.
func (s *Session) promptIDs(p Prompt, injectionSafe bool) ([]int32, error) {
	m := s.Model()
	n := s.NTokens()
	switch p.kind {
	case promptContinue:
		if n == 0 {
			return nil, argError("the session is empty: give a prompt")
		}
		return nil, nil
	case promptTokens:
		return append([]int32(nil), p.ids...), nil
	case promptText:
		ids, err := m.Tokenize(p.text, ParseSpecial)
		if err != nil || n > 0 {
			return ids, err
		}
		// <bos> opens an empty session unless the text brings its own
		bos, err := m.Prop(PropBOSID)
		if err != nil {
			return nil, err
		}
		if bos >= 0 && (len(ids) == 0 || int64(ids[0]) != bos) {
			ids = append([]int32{int32(bos)}, ids...)
		}
		return ids, nil
	}
	ids, err := m.ChatTokenize(p.msgs, true, injectionSafe)
	if err != nil || n == 0 {
		return ids, err
	}
	info, err := m.Info()
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 && ids[0] == info.BOSID {
		ids = ids[1:]
	}
	history, err := s.Tokens()
	if err != nil {
		return nil, err
	}
	closing, err := closeTurn(m, history, info.EndOfTurnID)
	if err != nil {
		return nil, err
	}
	return append(closing, ids...), nil
}

// closeTurn returns the ids that end the previous model turn as the chat
// template writes it ("<end_of_turn>\n"), minus what history already ends with.
func closeTurn(m *Model, history []int32, eot int32) ([]int32, error) {
	if eot < 0 || len(history) == 0 {
		return nil, nil
	}
	newline, err := m.Tokenize("\n", 0)
	if err != nil {
		return nil, err
	}
	full := append([]int32{eot}, newline...)
	if len(history) >= len(full) && equalIDs(history[len(history)-len(full):], full) {
		return nil, nil
	}
	if history[len(history)-1] == eot {
		return newline, nil
	}
	return full, nil
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
