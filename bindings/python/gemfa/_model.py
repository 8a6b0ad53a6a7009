"""gemfa.Model: a loaded checkpoint (weights, tokenizer, chat template)."""
from __future__ import annotations

import ctypes
import enum
import os
import re
from ctypes import c_float, c_int, c_int64
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Tuple, Union)

from . import _lib, _text
from ._core import as_token_id, check, encode_path, last_error, optional_str, query_ids
from ._errors import InvalidArgumentError, Status, error_for
from ._handle import Handle, Owner

if TYPE_CHECKING:  # pragma: no cover
    from ._sampler import Sampler
    from ._session import Context, Session

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
ProgressFn = Callable[[float, str], Optional[bool]]


class WeightType(enum.IntEnum):
    """gemfa_weight_type: how the big matrices are kept in memory."""
    AUTO = 0
    F32 = 1
    F16 = 2
    BF16 = 3
    INT8 = 4
    Q4 = 5


class Prop(enum.IntEnum):
    """gemfa_model_prop: integer facts read with :meth:`Model.get`."""
    VOCAB_SIZE = 1
    TOKENIZER_SIZE = 2
    CONTEXT_LENGTH = 3
    N_LAYERS = 4
    HIDDEN_SIZE = 5
    N_HEADS = 6
    N_KV_HEADS = 7
    HEAD_DIM = 8
    SLIDING_WINDOW = 9
    N_KV_SHARED_LAYERS = 10
    PER_LAYER_INPUT_SIZE = 11
    VOCAB_SIZE_PER_LAYER_INPUT = 12
    BOS_ID = 13
    EOS_ID = 14
    PAD_ID = 15
    UNK_ID = 16
    START_OF_TURN_ID = 17
    END_OF_TURN_ID = 18
    N_PARAMS = 19
    N_PARAMS_PLE = 20
    WEIGHT_BYTES = 21
    WEIGHT_TYPE = 22
    HAS_WEIGHTS = 23
    HAS_TOKENIZER = 24
    STORED_BYTES_F32 = 25
    STORED_BYTES_F16 = 26
    STORED_BYTES_BF16 = 27
    STORED_BYTES_INT8 = 28
    STORED_BYTES_Q4 = 29
    LORA_ADAPTERS = 36
    LORA_MATRICES = 37
    MATFORMER = 40
    BASE_LAYERS = 41
    SKIPPED_LAYERS = 42


class LayerType(enum.IntEnum):
    """gemfa_layer_type."""
    SLIDING = 0
    FULL = 1


class LayerInfo(NamedTuple):
    """Facts about one decoder layer (:meth:`Model.layer`)."""
    type: LayerType
    kv_source: int
    ffn_width: int
    sparsity: float


def _weight_type(weights: Union[str, int, WeightType]) -> WeightType:
    if isinstance(weights, str):
        try:
            return WeightType[weights.upper()]
        except KeyError:
            raise InvalidArgumentError(
                f"weights must be one of {', '.join(w.name.lower() for w in WeightType)}, "
                f"not {weights!r}") from None
    if isinstance(weights, bool) or not isinstance(weights, int):
        raise TypeError(f"weights must be a str or WeightType, not {type(weights).__name__}")
    try:
        return WeightType(weights)
    except ValueError:
        raise InvalidArgumentError(f"unknown weight type {weights}") from None


def _int_arg(value: Any, name: str) -> int:
    """An int that fits a C int (ctypes would silently truncate a bigger one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -2 ** 31 <= value < 2 ** 31:
        raise InvalidArgumentError(f"{name} {value} is out of range")
    return value


def _spec_arg(spec: Any) -> bytes:
    if not isinstance(spec, str):
        raise TypeError(f"a matformer spec must be a str, not {type(spec).__name__}")
    if "\0" in spec:
        raise InvalidArgumentError("a matformer spec cannot contain NUL")
    return spec.encode("utf-8")
def _lora_list(lora: Any) -> List[Tuple[bytes, float]]:
    """``lora``: one adapter directory, or a list of directories and
    (directory, scale) pairs."""
    if lora is None:
        return []
    if isinstance(lora, (str, bytes, os.PathLike)) or (
            isinstance(lora, tuple) and len(lora) == 2 and not isinstance(lora[1], (str, bytes))):
        lora = [lora]
    out = []
    for item in lora:
        scale: Any = 1.0
        if isinstance(item, tuple):
            if len(item) != 2:
                raise TypeError("a LoRA entry is a directory or a (directory, scale) pair")
            item, scale = item
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"a LoRA scale must be a number, not {type(scale).__name__}")
        out.append((encode_path(item), float(scale)))
    return out


class _Progress:
    """Wraps the user's progress function for C; remembers its exception."""

    def __init__(self, fn: ProgressFn):
        self.fn = fn
        self.error: Optional[BaseException] = None
        self.c_fn = _lib.PROGRESS_FN(self._call)

    def _call(self, _user: Any, fraction: float, stage: Optional[bytes]) -> int:
        try:
            return 1 if self.fn(float(fraction), optional_str(stage)) is False else 0
        except BaseException as e:  # noqa: B902 - carried back to the caller
            self.error = e
            return 1


def _failed_path(message: str, path: str) -> str:
    """The file a load error is about: the last "<path>[/<name>]: " in the
    message (a shard named by the index, config.json...), else ``path``."""
    found = path
    for m in re.finditer(re.escape(path) + r"(?:/[^/:']+)?(?=: )", message):
        found = m.group(0)
    return found


class Model(Owner):
    """A Gemma 3n checkpoint loaded from a Hugging Face directory.

    ``Model(path, weights="auto")`` loads config.json, the safetensors shards
    and (when present) the tokenizer, chat template and generation settings.
    ``weights``: "auto" (as stored), "f32", "f16", "bf16", "int8" or "q4".
    ``matformer``: a MatFormer sub-model spec ("e2b", or
    "ffn=W[,W...][:skip=I[,I...]]"; docs/matformer.md) to load only that
    sub-model.  ``vocab_only=True`` loads only the tokenizer and template.  ``threads``:
    threads for weight conversion (0 = all cores).  ``progress(fraction,
    stage)`` is called during the load; returning ``False`` cancels it
    (:class:`gemfa.CancelledError`), and an exception it raises is re-raised.

    A model is immutable and thread-safe: tokenize, detokenize and template
    calls may run from many threads at once.  Free it with :meth:`close` or
    a ``with`` block; sessions, contexts and detokenizer streams made from
    it keep it alive until they are closed too.
    """

    def __init__(self, path: PathLike, *, weights: Union[str, int, WeightType] = "auto",
                 vocab_only: bool = False, threads: int = 0,
                 progress: Optional[ProgressFn] = None, matformer: Optional[str] = None,
                 lora: Any = None):
        raw_path = encode_path(path)
        spec = _spec_arg(matformer) if matformer is not None else None
        adapters = _lora_list(lora)
        wtype = _weight_type(weights)
        threads = _int_arg(threads, "threads")
        if progress is not None and not callable(progress):
            raise TypeError("progress must be callable")
        lib = _lib.lib()
        opts = _lib.model_options_p()
        check(lib.gemfa_model_options_new(ctypes.byref(opts)))
        prog = _Progress(progress) if progress is not None else None
        out = _lib.model_p()
        try:
            check(lib.gemfa_model_options_set_weights(opts, int(wtype)))
            check(lib.gemfa_model_options_set_vocab_only(opts, int(bool(vocab_only))))
            check(lib.gemfa_model_options_set_threads(opts, threads))
            if spec is not None:
                check(lib.gemfa_model_options_set_matformer(opts, spec))
            for adapter_dir, scale in adapters:
                check(lib.gemfa_model_options_add_lora(opts, adapter_dir, scale))
            if prog is not None:
                check(lib.gemfa_model_options_set_progress(opts, prog.c_fn, None))
            st = lib.gemfa_model_load(raw_path, opts, ctypes.byref(out))
        finally:
            lib.gemfa_model_options_free(opts)
        if prog is not None and prog.error is not None:
            if out:
                lib.gemfa_model_free(out)
            raise prog.error
        if st != Status.OK:
            message, shown = last_error(), os.fsdecode(raw_path)
            raise error_for(st, message, _failed_path(message, shown))
        self._path = os.fsdecode(raw_path)
        self._own(Handle(out, lib.gemfa_model_free, "model"))

    # -- properties ---------------------------------------------------------------
    def get(self, prop: Union[Prop, int]) -> int:
        """Reads one integer property (see :class:`Prop`)."""
        value = c_int64(0)
        with self._use() as p:
            check(_lib.lib().gemfa_model_get(p, int(prop), ctypes.byref(value)))
        return value.value

    def info(self) -> Dict[str, int]:
        """Every property as a dict keyed by lower-case name."""
        return {pr.name.lower(): self.get(pr) for pr in Prop}

    @property
    def path(self) -> str:
        """The directory the model was loaded from."""
        return self._path

    vocab_size = property(lambda self: self.get(Prop.VOCAB_SIZE),
                          doc="Logits per position.")
    tokenizer_size = property(lambda self: self.get(Prop.TOKENIZER_SIZE),
                              doc="Ids the tokenizer has pieces for.")
    context_length = property(lambda self: self.get(Prop.CONTEXT_LENGTH),
                              doc="max_position_embeddings.")
    n_layers = property(lambda self: self.get(Prop.N_LAYERS), doc="Decoder layers.")
    hidden_size = property(lambda self: self.get(Prop.HIDDEN_SIZE), doc="Model width.")
    n_heads = property(lambda self: self.get(Prop.N_HEADS), doc="Attention heads.")
    n_kv_heads = property(lambda self: self.get(Prop.N_KV_HEADS), doc="Key/value heads.")
    head_dim = property(lambda self: self.get(Prop.HEAD_DIM), doc="Width of one head.")
    sliding_window = property(lambda self: self.get(Prop.SLIDING_WINDOW),
                              doc="Window of the sliding-attention layers.")
    n_params = property(lambda self: self.get(Prop.N_PARAMS),
                        doc="Text-decoder parameters, per-layer embedding table included.")
    weight_bytes = property(lambda self: self.get(Prop.WEIGHT_BYTES),
                            doc="Bytes of text-decoder weights as used.")
    lora_adapters = property(lambda self: self.get(Prop.LORA_ADAPTERS),
                             doc="LoRA adapters merged at load.")
    lora_matrices = property(lambda self: self.get(Prop.LORA_MATRICES),
                             doc="Weight matrices the LoRA adapters changed.")
    has_weights = property(lambda self: bool(self.get(Prop.HAS_WEIGHTS)),
                           doc="False for a vocabulary-only model.")
    has_tokenizer = property(lambda self: bool(self.get(Prop.HAS_TOKENIZER)),
                             doc="False when the directory had no tokenizer files.")

    @property
    def weight_type(self) -> WeightType:
        """The resolved weight type."""
        return WeightType(self.get(Prop.WEIGHT_TYPE))

    def _opt_id(self, prop: Prop) -> Optional[int]:
        v = self.get(prop)
        return None if v < 0 else v

    bos_id = property(lambda self: self._opt_id(Prop.BOS_ID), doc="<bos> id or None.")
    eos_id = property(lambda self: self._opt_id(Prop.EOS_ID),
                      doc="First end-of-generation id or None.")
    pad_id = property(lambda self: self._opt_id(Prop.PAD_ID), doc="<pad> id or None.")
    unk_id = property(lambda self: self._opt_id(Prop.UNK_ID), doc="<unk> id or None.")
    start_of_turn_id = property(lambda self: self._opt_id(Prop.START_OF_TURN_ID),
                                doc="<start_of_turn> id or None.")
    end_of_turn_id = property(lambda self: self._opt_id(Prop.END_OF_TURN_ID),
                              doc="<end_of_turn> id or None.")

    def layer(self, index: int) -> LayerInfo:
        """Facts about decoder layer ``index`` (0-based)."""
        index = _int_arg(index, "layer")
        ltype, kv, width, sparsity = c_int(0), c_int(0), c_int64(0), c_float(0)
        with self._use() as p:
            check(_lib.lib().gemfa_model_layer(p, index, ctypes.byref(ltype), ctypes.byref(kv),
                                               ctypes.byref(width), ctypes.byref(sparsity)))
        return LayerInfo(LayerType(ltype.value), kv.value, width.value, sparsity.value)

    # -- MatFormer sub-models ---------------------------------------------------------
    def derive(self, spec: str) -> "Model":
        """The MatFormer sub-model ``spec`` of this model ("e2b", or
        "ffn=W[,W...][:skip=I[,I...]]", indices and widths relative to this
        model's layers), sharing its weights: nothing is copied but the
        narrowed down_proj columns.  Either model may be closed first.
        Raises InvalidArgumentError, ModelMismatchError (a preset for another
        checkpoint shape), NoWeightsError."""
        raw = _spec_arg(spec)
        out = _lib.model_p()
        lib = _lib.lib()
        with self._use() as p:
            st = lib.gemfa_model_derive_submodel(p, raw, ctypes.byref(out))
        if st != Status.OK:
            raise error_for(st, last_error())
        sub = Model.__new__(Model)
        sub._path = self._path
        sub._own(Handle(out, lib.gemfa_model_free, "model"))
        return sub

    @property
    def matformer(self) -> Optional[str]:
        """The MatFormer spec this model was sliced with, or None."""
        with self._use() as p:
            raw = _lib.lib().gemfa_model_matformer(p)
        return None if raw is None else raw.decode("utf-8")

    def base_layer(self, index: int) -> int:
        """The checkpoint layer that decoder layer ``index`` is (differs from
        ``index`` when a MatFormer spec skipped layers)."""
        index = _int_arg(index, "layer")
        out = c_int(0)
        with self._use() as p:
            check(_lib.lib().gemfa_model_base_layer(p, index, ctypes.byref(out)))
        return out.value

    @property
    def layers(self) -> List[LayerInfo]:
        """:meth:`layer` for every layer."""
        return [self.layer(i) for i in range(self.n_layers)]

    @property
    def eog_ids(self) -> Tuple[int, ...]:
        """The ids that end generation."""
        lib = _lib.lib()
        with self._use() as p:
            return tuple(query_ids(lambda buf, cap, n: lib.gemfa_model_eog_ids(p, buf, cap, n), 8))

    def is_eog(self, token: int) -> bool:
        """True when ``token`` ends generation."""
        tid = as_token_id(token)
        with self._use() as p:
            return bool(_lib.lib().gemfa_model_is_eog(p, tid))

    # -- text ---------------------------------------------------------------------
    def tokenize(self, text: Union[str, bytes], add_bos: bool = True,
                 parse_special: bool = True) -> List[int]:
        """Token ids of ``text``, exactly as Hugging Face tokenizers gives them.

        ``add_bos`` prepends <bos>; ``parse_special`` turns text such as
        "<start_of_turn>" into the special id (set it False for untrusted
        text).  ``bytes`` are taken as UTF-8.  Raises InvalidUtf8Error,
        NoTokenizerError."""
        flags = (_text.TOKENIZE_ADD_BOS if add_bos else 0) | \
            (_text.TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        with self._use() as p:
            return _text.tokenize(p, text, flags)

    def detokenize(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Text of ``ids`` as Hugging Face decodes it (``skip_special`` drops
        <bos>, <end_of_turn>, ...).  Raises InvalidTokenError."""
        with self._use() as p:
            return _text.detokenize(p, ids, _text.DETOKENIZE_SKIP_SPECIAL if skip_special else 0)

    def token_piece(self, token: int) -> str:
        """The raw piece of one id ("▁سلام", "<0xE2>", "<bos>"; "" if it has none)."""
        with self._use() as p:
            return _text.token_piece(p, token)

    def token_id(self, piece: Union[str, bytes]) -> Optional[int]:
        """The id of an exact piece or added-token text, or None."""
        with self._use() as p:
            tid = _text.token_id(p, piece)
        return None if tid < 0 else tid

    def apply_chat_template(self, messages: Iterable[_text.MessageLike],
                            add_generation_prompt: bool = True) -> str:
        """Renders chat messages with the Gemma 3n template.

        ``messages``: dicts ``{"role": "system"|"user"|"assistant"|"model",
        "content": str}`` (list content as Hugging Face accepts it works too).
        The result starts with "<bos>"; tokenize it with ``add_bos=False``.
        Raises TemplateError for roles out of order or an empty list."""
        with self._use() as p:
            return _text.apply_chat_template(p, messages, add_generation_prompt)

    def chat_tokenize(self, messages: Iterable[_text.MessageLike],
                      add_generation_prompt: bool = True,
                      injection_safe: bool = False) -> List[int]:
        """Renders and tokenizes in one step, with exactly one <bos>.

        ``injection_safe=True`` keeps special-token text typed inside message
        contents as plain text (the default matches Hugging Face)."""
        with self._use() as p:
            return _text.chat_tokenize(p, messages, add_generation_prompt, injection_safe)

    def detokenizer(self, skip_special: bool = False) -> _text.DetokenizerStream:
        """A streaming detokenizer (feed ids, get complete UTF-8 text)."""
        if self.closed:
            self._use()  # raises ClosedError
        return _text.DetokenizerStream(self._handle, skip_special)

    # -- compute ------------------------------------------------------------------
    def context(self, threads: int = 0,
                cancel: Optional[Callable[[], bool]] = None) -> "Context":
        """Compute resources (thread pool, scratch) serving sessions in turn."""
        from ._session import Context
        return Context(self, threads=threads, cancel=cancel)

    def session(self, context: int = 0, threads: int = 0,
                cancel: Optional[Callable[[], bool]] = None,
                kv_type: Any = None) -> "Session":
        """A new conversation with its own compute context.

        ``context``: most tokens it can hold (0 = the model's context length);
        ``threads``: compute threads (0 = all cores); ``cancel()``: polled
        during decode, return True to stop it; ``kv_type``: ``"f32"``
        (default, exact) or ``"f16"`` (half the KV memory)."""
        from ._session import Context
        ctx = Context(self, threads=threads, cancel=cancel)
        try:
            return ctx.session(context=context, kv_type=kv_type)
        finally:
            ctx.close()  # the session holds the context now

    def load_session(self, source: Any, context: int = 0, threads: int = 0,
                     cancel: Optional[Callable[[], bool]] = None,
                     kv_type: Any = None) -> "Session":
        """A session restored from a saved state, with its own compute context:
        :meth:`Context.load_session` on a new context (``threads``, ``cancel``
        as in :meth:`session`)."""
        from ._session import Context
        ctx = Context(self, threads=threads, cancel=cancel)
        try:
            return ctx.load_session(source, context=context, kv_type=kv_type)
        finally:
            ctx.close()  # the session holds the context now

    def sampler(self, **settings: Any) -> "Sampler":
        """A :class:`gemfa.Sampler` with this model's generation_config defaults."""
        from ._sampler import Sampler
        return Sampler(self, **settings)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<gemfa.Model {self._path!r} {state}>" if hasattr(self, "_path") else \
            "<gemfa.Model>"

