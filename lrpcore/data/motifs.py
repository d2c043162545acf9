"""Synthetic one-hot DNA sequences with planted motifs and position-exact ground truth.

Design
------
Every sequence is random background DNA (independent bases; uniform, or
biased towards G/C with ``gc_content``). By default there are three classes:

* class 0, ``"background"``: background only, no motif;
* class 1, ``"motif_a"``: one or two copies of motif A (``GGGACTTTCC``);
* class 2, ``"motif_b"``: one or two copies of motif B (``TGACTCAGCA``).

So a model has to find *a motif* to separate class 0 from the others and
tell *which* motif to separate classes 1 and 2; the planted positions are the
ground truth an explanation should highlight. Each planted copy is sampled
from a position weight matrix (PWM): the consensus base with probability
``1 - motif_noise`` and one of the other three bases otherwise, so instances
vary like real binding sites. With ``both_strands=True`` a copy is planted as
the reverse complement half of the time. Copies never overlap.

The default motifs are 10-mers modelled on well-known transcription factor
sites (NF-kB-like, AP-1-like, E-box-like, and a palindrome for a fourth
class); any two differ in at least 6 of 10 positions, also when one is
reverse complemented. Custom motifs are
consensus strings over ``ACGT`` or PWMs of shape ``(4, width)``.

Inputs are float32 ``(N, 4, length)`` with channels A, C, G, T in that order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .dataset import (
    PER_SAMPLE_KEY,
    Dataset,
    check_count,
    check_probability,
    check_seed,
    seeded_generator,
)

__all__ = ["motifs", "BASES", "DEFAULT_MOTIFS", "sequences_to_strings", "consensus"]

#: Channel order of the one-hot encoding.
BASES = "ACGT"

#: Built-in motifs, used in this order when ``motifs=None``.
DEFAULT_MOTIFS = (
    "GGGACTTTCC",  # NF-kB-like
    "TGACTCAGCA",  # AP-1-like (TGACTCA core)
    "CACGTGACGT",  # E-box-like (CACGTG core)
    "TTATCGATAA",
)

# Index of the complementary base for each channel (A<->T, C<->G).
_COMPLEMENT = np.array([3, 2, 1, 0])


def _consensus_to_pwm(consensus_string: str, motif_noise: float) -> np.ndarray:
    indices = np.array([BASES.index(base) for base in consensus_string])
    pwm = np.full((4, len(consensus_string)), motif_noise / 3.0)
    pwm[indices, np.arange(len(consensus_string))] = 1.0 - motif_noise
    return pwm


def consensus(pwm: np.ndarray) -> str:
    """Return the most likely sequence of a ``(4, width)`` position weight matrix."""
    return "".join(BASES[index] for index in np.asarray(pwm).argmax(axis=0))


def sequences_to_strings(x: np.ndarray) -> list[str]:
    """Decode one-hot sequences ``(N, 4, length)`` (channels A, C, G, T) to strings."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1] != 4:
        raise ValueError(f"x must have shape (N, 4, length), got {x.shape}")
    letters = np.array(list(BASES))
    return ["".join(letters[row]) for row in x.argmax(axis=1)]


def _check_motifs(motif_specs, motif_noise: float) -> list[np.ndarray]:
    """Turn consensus strings or PWMs into a list of validated (4, width) PWMs."""
    if isinstance(motif_specs, str):
        raise ValueError(f"motifs must be a sequence of motifs, got the string {motif_specs!r}")
    specs = list(motif_specs)
    if not specs:
        raise ValueError("motifs must contain at least one motif, got an empty sequence")
    pwms = []
    for position, spec in enumerate(specs):
        if isinstance(spec, str):
            spec_upper = spec.upper()
            if not spec_upper or any(base not in BASES for base in spec_upper):
                raise ValueError(f"motifs[{position}] must be a non-empty string over {BASES!r}, got {spec!r}")
            pwms.append(_consensus_to_pwm(spec_upper, motif_noise))
            continue
        pwm = np.asarray(spec, dtype=np.float64)
        if pwm.ndim != 2 or pwm.shape[0] != 4 or pwm.shape[1] < 1:
            raise ValueError(f"motifs[{position}] must be a string or a (4, width) PWM, got shape {pwm.shape}")
        if np.any(pwm < 0) or not np.allclose(pwm.sum(axis=0), 1.0):
            raise ValueError(f"motifs[{position}] PWM columns must be probabilities summing to 1")
        pwms.append(pwm / pwm.sum(axis=0))
    return pwms


def motifs(
    n: int,
    length: int = 250,
    seed: int = 0,
    motifs: Sequence[str | np.ndarray] | None = None,
    n_classes: int | None = None,
    background_class: bool = True,
    copies: tuple[int, int] = (1, 2),
    motif_noise: float = 0.1,
    gc_content: float = 0.5,
    both_strands: bool = False,
) -> Dataset:
    """Generate ``n`` one-hot DNA sequences whose class is set by a planted motif.

    Parameters
    ----------
    n:
        Number of sequences (>= 1).
    length:
        Sequence length in bases; must fit the largest number of copies of
        the widest motif.
    seed:
        Non-negative seed. Sequence ``i`` is drawn from its own generator
        (``SeedSequence(seed, spawn_key=(i, 0))``), so equal arguments give
        bit-identical arrays and sequence ``i`` does not depend on ``n``.
    motifs:
        Motifs as consensus strings over ``ACGT`` or ``(4, width)`` PWMs
        (rows A, C, G, T). ``None`` uses :data:`DEFAULT_MOTIFS`, as many as
        ``n_classes`` needs (two by default).
    n_classes:
        Number of classes; ``None`` derives it from ``motifs`` (one class per
        motif, plus the background class). If given together with
        ``motifs`` it must agree with them.
    background_class:
        If true, class 0 is ``"background"`` (no motif) and class ``k`` holds
        motif ``k - 1``; otherwise class ``k`` holds motif ``k``.
    copies:
        Inclusive range ``(low, high)`` of the number of non-overlapping
        copies planted in each motif sequence.
    motif_noise:
        For string motifs, probability in [0, 1) that a planted base differs
        from the consensus (a uniformly chosen other base). Ignored for PWMs.
    gc_content:
        Probability in (0, 1) that a background base is G or C.
    both_strands:
        Plant each copy as its reverse complement with probability 1/2.

    Returns
    -------
    Dataset
        ``x`` float32 ``(n, 4, length)`` one-hot; ``y`` int64 labels;
        ``masks`` bool ``(n, length)``, ``True`` on the planted motif bases
        (all ``False`` for background sequences); ``boxes`` ``None``;
        ``class_names`` such as ``("background", "motif_a", "motif_b")``;
        ``meta`` with the motif ``pwms``, their ``consensus`` strings, the
        options, and per-sample ``motif_starts`` (``(n, copies[1])``, -1 =
        unused) and ``motif_reverse`` (planted as reverse complement).
    """
    n = check_count("n", n)
    length = check_count("length", length)
    seed = check_seed(seed)
    motif_noise = check_probability("motif_noise", motif_noise)
    if motif_noise >= 1.0:
        raise ValueError(f"motif_noise must be in [0, 1), got {motif_noise!r}")
    gc_content = check_probability("gc_content", gc_content)
    if not 0.0 < gc_content < 1.0:
        raise ValueError(f"gc_content must be in (0, 1), got {gc_content!r}")
    try:
        min_copies, max_copies = (int(count) for count in copies)
    except (TypeError, ValueError):
        raise ValueError(f"copies must be a pair (low, high) of integers, got {copies!r}") from None
    if not 1 <= min_copies <= max_copies:
        raise ValueError(f"copies must satisfy 1 <= low <= high, got {copies!r}")
    extra_classes = 1 if background_class else 0

    if motifs is None:
        if n_classes is None:
            n_classes = 2 + extra_classes
        n_classes = check_count("n_classes", n_classes, minimum=1 + extra_classes)
        if n_classes - extra_classes > len(DEFAULT_MOTIFS):
            raise ValueError(
                f"n_classes must be at most {len(DEFAULT_MOTIFS) + extra_classes} with the default "
                f"motifs, got {n_classes}; pass motifs= for more classes"
            )
        motifs = DEFAULT_MOTIFS[: n_classes - extra_classes]
    pwms = _check_motifs(motifs, motif_noise)
    if n_classes is None:
        n_classes = len(pwms) + extra_classes
    elif n_classes != len(pwms) + extra_classes:
        raise ValueError(
            f"n_classes={n_classes!r} does not match {len(pwms)} motifs "
            f"(background_class={background_class}); expected {len(pwms) + extra_classes}"
        )
    widest = max(pwm.shape[1] for pwm in pwms)
    if length < max_copies * widest:
        raise ValueError(
            f"length must be at least {max_copies * widest} to fit {max_copies} copies of a "
            f"{widest}-base motif, got {length}"
        )

    motif_names = [f"motif_{chr(ord('a') + index)}" if index < 26 else f"motif_{index}" for index in range(len(pwms))]
    class_names = (("background",) if background_class else ()) + tuple(motif_names)
    background_probabilities = np.array([1 - gc_content, gc_content, gc_content, 1 - gc_content]) / 2
    cumulative_pwms = [np.cumsum(pwm, axis=0) for pwm in pwms]

    base_indices = np.empty((n, length), dtype=np.int64)
    masks = np.zeros((n, length), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    motif_starts = np.full((n, max_copies), -1, dtype=np.int64)
    motif_reverse = np.zeros((n, max_copies), dtype=bool)

    for index in range(n):
        rng = seeded_generator(seed, index, stream=0)
        label = int(rng.integers(n_classes))
        sequence = rng.choice(4, size=length, p=background_probabilities)
        motif_index = label - extra_classes
        if motif_index >= 0:
            pwm_cumulative = cumulative_pwms[motif_index]
            width = pwm_cumulative.shape[1]
            copy_count = int(rng.integers(min_copies, max_copies + 1))
            # Non-overlapping starts: sorted offsets in the free space, then
            # shift copy k right by k motif widths.
            offsets = np.sort(rng.integers(0, length - copy_count * width + 1, size=copy_count))
            starts = offsets + width * np.arange(copy_count)
            for copy, start in enumerate(starts):
                # Inverse-CDF sampling of one base per PWM column.
                draws = rng.random(width)
                bases = np.minimum((draws[None, :] > pwm_cumulative).sum(axis=0), 3)
                reverse = both_strands and rng.random() < 0.5
                if reverse:
                    bases = _COMPLEMENT[bases[::-1]]
                sequence[start : start + width] = bases
                masks[index, start : start + width] = True
                motif_starts[index, copy] = start
                motif_reverse[index, copy] = reverse
        base_indices[index] = sequence
        labels[index] = label

    one_hot = np.zeros((n, 4, length), dtype=np.float32)
    np.put_along_axis(one_hot, base_indices[:, None, :], 1.0, axis=1)

    meta = {
        "generator": "motifs",
        "seed": seed,
        "length": length,
        "bases": BASES,
        "pwms": tuple(pwms),
        "consensus": tuple(consensus(pwm) for pwm in pwms),
        "motif_classes": {name: class_names.index(name) for name in motif_names},
        "background_class": bool(background_class),
        "copies": (min_copies, max_copies),
        "motif_noise": motif_noise,
        "gc_content": gc_content,
        "both_strands": bool(both_strands),
        PER_SAMPLE_KEY: {"motif_starts": motif_starts, "motif_reverse": motif_reverse},
    }
    return Dataset(
        x=one_hot,
        y=labels,
        masks=masks,
        boxes=None,
        class_names=class_names,
        value_range=(0.0, 1.0),
        meta=meta,
    )
