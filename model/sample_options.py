"""How posts are sampled, as values: `Decoding` (what a post's words and lines may be, with its one
stored form), `SampleOptions` (config [sample], the pool's drafts, `buhurt sample`) and
`SampleRequest` (one call to the Generator: the options, a start text, argmax).

No torch here (the config reader and `buhurt --help` import it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from model.errors import ModelError

DEFAULT_TEMPERATURE = 0.8
WORD_MODES = ("known", "any")
DICTIONARIES = ("ru", "none")
QUOTE_MODES = ("balanced", "any")
GRAMMAR_MODES = ("agree", "any")
ENDING_MODES = ("community", "floor")


def _show(names) -> str:
    return " or ".join(f'"{n}"' for n in names)


@dataclass(frozen=True)
class Decoding:
    """What the decoder allows a post to be (model.decoding applies it).

    words: "known": a word (a run of letters) the lexicon or the dictionary does not know is taken
        back and sampled again (model.words); "any": torch-rnn's unconstrained sampling.
    dictionary: "ru": the OpenCorpora dictionary (pymorphy3) besides the checkpoint's lexicon; "none".
    quotes: "balanced": a quote (« or ") opened on a line closes on it (model.quotes); "any".
    grammar: "agree": a known word that cannot agree with the word before it (pronoun and verb,
        preposition and case, adjective and noun, a word doubled; model.grammar) is taken back like
        an unknown one. It needs the dictionary and known words, and is off without them.
    ending (with grammar): where a post ends. "floor": after each line of text the post gap gets at
        least the community's odds of a post ending after that many lines (the model's own odds when
        they are higher); "community": the gap gets exactly those odds, the model's own replaced, so
        posts run as long as the community's. Both rise to certainty as the length cap nears.

    Stored with each draft as `name` ("any", "known/ru", then "+quotes", "+grammar", "+ends" for the
    community's ending), so /meme N
    regenerates the draft the way it was made; `parse` reads every name ever stored."""

    words: str = "any"
    dictionary: str = "none"
    quotes: str = "any"
    grammar: str = "any"
    ending: str = "floor"

    def problems(self) -> dict[str, str]:
        problems = {}
        for key, modes in (("words", WORD_MODES), ("dictionary", DICTIONARIES), ("quotes", QUOTE_MODES),
                           ("grammar", GRAMMAR_MODES), ("ending", ENDING_MODES)):
            if getattr(self, key) not in modes:
                problems[key] = _show(modes)
        return problems

    @property
    def known(self) -> bool:
        return self.words == "known"

    @property
    def agree(self) -> bool:
        """Grammar decoding is on (asked for, with known words and the Russian dictionary)."""
        return self.grammar == "agree" and self.known and self.dictionary == "ru"

    @property
    def name(self) -> str:
        """As stored with a draft (drafts.decoding)."""
        name = f"known/{self.dictionary}" if self.known else "any"
        if self.quotes == "balanced":
            name += "+quotes"
        if not self.agree:
            return name
        return name + ("+grammar+ends" if self.ending == "community" else "+grammar")

    @classmethod
    def parse(cls, value: str | None) -> "Decoding":
        """The decoding of a stored name. None or "" (drafts made before known-word decoding) is
        "any"; a suffix a name lacks was off when the draft was made (quotes unconstrained, no grammar,
        the floor ending)."""
        name, *suffixes = (value or "any").split("+")
        word_mode, _, dictionary = name.partition("/")
        ok = (name == "any" or word_mode == "known" and dictionary in DICTIONARIES) and \
            suffixes in ([], ["quotes"], ["grammar"], ["quotes", "grammar"], ["grammar", "ends"],
                         ["quotes", "grammar", "ends"]) and \
            ("grammar" not in suffixes or dictionary == "ru")
        if not ok:
            raise ModelError(f"decoding {value!r}: expected 'any' or 'known/<{'|'.join(DICTIONARIES)}>', "
                             f"then optionally '+quotes', then '+grammar' (known/ru only), then '+ends'")
        return cls(words="known" if word_mode == "known" else "any", dictionary=dictionary or "none",
                   quotes="balanced" if "quotes" in suffixes else "any",
                   grammar="agree" if "grammar" in suffixes else "any",
                   ending="community" if "ends" in suffixes else "floor")


DECODING_KEYS = tuple(f.name for f in fields(Decoding))
TORCH_RNN = Decoding()   # sample.lua: unconstrained, the Generator's default
PRODUCT = Decoding(words="known", dictionary="ru", quotes="balanced", grammar="agree", ending="community")


@dataclass(frozen=True)
class SampleOptions:
    """[sample]: how the product samples; the decoding's five keys are `decoding`'s fields."""

    # lower is safer and duller, higher wilder: a number > 0, or "auto": the active model's tuned
    # temperature (`buhurt tune`), else 0.8; the caller resolves "auto": the Generator takes numbers only
    temperature: float | str = DEFAULT_TEMPERATURE
    max_length: int = 500         # characters per post at most (cut at a line end when possible)
    top_k: int = 0                # sample among the K likeliest characters; 0: all
    words: str = PRODUCT.words            # "known": an unknown word is sampled again; "any": torch-rnn's sampling
    dictionary: str = PRODUCT.dictionary  # known words besides the lexicon's: "ru" (OpenCorpora) or "none"
    quotes: str = PRODUCT.quotes          # "balanced": a quote opened on a line closes on it; "any"
    # "agree": a word that cannot agree with the one before it is sampled again (needs words = "known"
    # and dictionary = "ru"); "any"
    grammar: str = PRODUCT.grammar
    # with grammar, where posts end: "community": after each line at the community's odds of a post
    # ending there (posts as long as theirs); "floor": at least those odds, more where the model wants
    ending: str = PRODUCT.ending

    def problems(self) -> dict[str, str]:
        problems = _number_problems(self.temperature, self.max_length, self.top_k, auto=True)
        problems.update(self.decoding.problems())
        return problems

    @property
    def decoding(self) -> Decoding:
        return Decoding(self.words, self.dictionary, self.quotes, self.grammar, self.ending)

    def request(self, start_text: str = "", temperature: float | None = None) -> "SampleRequest":
        """One Generator call with these options (`temperature` resolves "auto")."""
        t = self.temperature if temperature is None else temperature
        return SampleRequest(t, self.max_length, self.top_k, self.decoding, start_text)  # type: ignore[arg-type]


def resolved_temperature(temperature: float | str, tuned: float | None = None) -> float:
    """A temperature setting as the number the Generator takes: "auto" is the model's `tuned`
    temperature (jobs.tune) when it has one, else DEFAULT_TEMPERATURE."""
    if temperature == "auto":
        return tuned if tuned is not None else DEFAULT_TEMPERATURE
    return float(temperature)


MAX_LENGTH = 16_384   # characters: no network publishes a longer post, and the decoder's buffers grow with it


def _number_problems(temperature, max_length, top_k, auto: bool) -> dict[str, str]:
    problems = {}
    t = temperature
    if isinstance(t, str) and not (auto and t == "auto") or not isinstance(t, str) and not (
            not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        problems["temperature"] = '"auto" or a number > 0' if auto else "a finite number > 0"
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 0 < max_length <= MAX_LENGTH:
        problems["max_length"] = f"a positive integer up to {MAX_LENGTH} (VK's longest post; Telegram's is 4096)"
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        problems["top_k"] = "an integer >= 0"
    return problems


@dataclass(frozen=True)
class SampleRequest:
    """One call to the Generator (model.sample.Generator.generate_samples): each post depends only on
    the checkpoint, its seed and this value. As stored with a draft: drafts.temperature, max_length,
    top_k, start_text and decoding (`decoding.name`)."""

    temperature: float = DEFAULT_TEMPERATURE
    max_length: int = SampleOptions.max_length
    top_k: int = 0
    decoding: Decoding = field(default_factory=Decoding)
    start_text: str = ""
    argmax: bool = False

    @classmethod
    def of(cls, temperature: float = DEFAULT_TEMPERATURE, max_length: int = SampleOptions.max_length,
           top_k: int = 0, words: str = TORCH_RNN.words, dictionary: str = TORCH_RNN.dictionary,
           quotes: str = TORCH_RNN.quotes, grammar: str = TORCH_RNN.grammar, ending: str = TORCH_RNN.ending,
           start_text: str = "",
           argmax: bool = False) -> "SampleRequest":
        """A request from flat keyword arguments (the library's and the tests' spelling)."""
        return cls(temperature, max_length, top_k, Decoding(words, dictionary, quotes, grammar, ending), start_text,
                   argmax)

    def problems(self) -> dict[str, str]:
        problems = _number_problems(self.temperature, self.max_length, self.top_k, auto=False)
        if not isinstance(self.decoding, Decoding):
            problems["decoding"] = "a Decoding"
        else:
            problems.update(self.decoding.problems())
        if not isinstance(self.start_text, str):
            problems["start_text"] = "a string"
        return problems

    def check(self) -> "SampleRequest":
        """Raises ModelError naming the first field out of range."""
        for key, expected in self.problems().items():
            owner = self.decoding if key in DECODING_KEYS and isinstance(self.decoding, Decoding) else self
            raise ModelError(f"{key}={getattr(owner, key, None)!r}: expected {expected}")
        return self
