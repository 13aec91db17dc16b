"""Metric functions on hand-made cases with known answers."""

from __future__ import annotations

import math

import pytest

from assistant.evaluation import metrics as M


def test_hit_at_k():
    ranked = ["a", "b", "c", "d"]
    assert M.hit_at_k(ranked, {"c"}, 1) == 0.0
    assert M.hit_at_k(ranked, {"c"}, 2) == 0.0
    assert M.hit_at_k(ranked, {"c"}, 3) == 1.0
    assert M.hit_at_k(ranked, {"z"}, 10) == 0.0
    assert M.hit_at_k([], {"a"}, 1) == 0.0
    with pytest.raises(ValueError):
        M.hit_at_k(ranked, {"a"}, 0)


def test_mrr():
    assert M.mrr(["a", "b", "c"], {"a"}) == 1.0
    assert M.mrr(["a", "b", "c"], {"c", "b"}) == 0.5
    assert M.mrr(["a", "b", "c"], {"c"}) == pytest.approx(1 / 3)
    assert M.mrr(["a", "b", "c"], {"c"}, k=2) == 0.0
    assert M.mrr(["a", "b"], {"x"}) == 0.0


def test_ndcg_known_values():
    # relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert M.ndcg(["x", "a", "y", "b"], {"a", "b"}, 4) == pytest.approx(expected)
    assert M.ndcg(["x", "a", "y", "b"], {"a", "b"}, 4) == pytest.approx(0.650921, abs=1e-6)
    assert M.ndcg(["a", "b", "x"], {"a", "b"}, 3) == 1.0
    assert M.ndcg(["x", "y"], {"a"}, 2) == 0.0
    assert M.ndcg(["x"], set(), 1) == 0.0
    # relevant item beyond k does not count; the ideal is capped at k
    assert M.ndcg(["x", "a"], {"a", "b", "c"}, 1) == 0.0
    # a collection with more relevant items than were retrieved
    assert M.ndcg(["a", "x"], {"a"}, 2, n_relevant=5) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_dedupe_keeps_first_occurrence():
    assert M.dedupe(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_rouge_l():
    # LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5 of 6 tokens each
    assert M.rouge_l_f1("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert M.rouge_l_f1("Hello World", "hello, world!") == 1.0
    assert M.rouge_l_f1("abc", "xyz") == 0.0
    assert M.rouge_l_f1("", "x") == 0.0
    # P = 2/2, R = 2/4 -> F1 = 2/3
    assert M.rouge_l_f1("a b", "a x b y") == pytest.approx(2 / 3)


def test_lcs_length():
    assert M.lcs_length("ABCBDAB", "BDCABA") == 4
    assert M.lcs_length([], [1]) == 0


def test_chrf_known_value():
    # orders 1..3 exist in both: P = R = (2/3 + 1/2 + 0) / 3 = 7/18, so F-beta = 7/18
    assert M.chrf("abc", "abd") == pytest.approx(7 / 18)
    assert M.chrf("same text", "same text") == 1.0
    assert M.chrf("same text", "sametext") == 1.0  # whitespace is ignored
    assert M.chrf("aaa", "bbb") == 0.0
    assert M.chrf("", "abc") == 0.0


def test_chrf_weights_recall_more_than_precision():
    # candidate "ab" vs reference "abcd": orders 1, 2: P = 1, R = (2/4 + 1/3) / 2 = 5/12
    p, r = 1.0, 5 / 12
    expected = 5 * p * r / (4 * p + r)
    assert M.chrf("ab", "abcd") == pytest.approx(expected) == pytest.approx(25 / 53)
    # swapped: P = 5/12, R = 1 -> 25/32; recall counts four times as much as precision (beta = 2)
    assert M.chrf("abcd", "ab") == pytest.approx(25 / 32)


def test_cosine():
    assert M.cosine([1, 0], [0, 1]) == 0.0
    assert M.cosine([1, 2], [2, 4]) == pytest.approx(1.0)
    assert M.cosine([1, 0], [-1, 0]) == -1.0
    assert M.cosine([0, 0], [1, 1]) == 0.0
    with pytest.raises(ValueError):
        M.cosine([1], [1, 2])


def test_percentile_matches_linear_interpolation():
    assert M.percentile([1, 2, 3, 4], 50) == 2.5
    assert M.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert M.percentile([4, 1, 3, 2], 0) == 1
    assert M.percentile([4, 1, 3, 2], 100) == 4
    assert M.percentile([7], 95) == 7
    assert M.percentile([], 50) is None


def test_mean_ignores_missing():
    assert M.mean([1, None, 3]) == 2
    assert M.mean([None]) is None


def test_contains():
    assert M.contains_all("Send a PHOTO within 14 days", ["photo", "14 days"]) == (1.0, [])
    assert M.contains_all("Send a photo", ["photo", "label"]) == (0.5, ["label"])
    assert M.contains_any("We offer a Gift Card", ["gift card", "voucher"]) == ["gift card"]


def test_paired_bootstrap():
    assert M.paired_bootstrap([-1.0] * 5) == (-1.0, -1.0, -1.0)
    assert M.paired_bootstrap([0.0] * 8) == (0.0, 0.0, 0.0)
    mean, lo, hi = M.paired_bootstrap([0.1, 0.2, 0.3, 0.4, 0.5] * 4)
    assert mean == pytest.approx(0.3)
    assert 0.1 < lo < 0.3 < hi < 0.5
    # deterministic for a seed
    assert M.paired_bootstrap([1, -1, 0, 2, -3]) == M.paired_bootstrap([1, -1, 0, 2, -3])
    # one worse case out of 30 is not a significant drop; the interval includes 0
    mean, lo, hi = M.paired_bootstrap([-1.0] + [0.0] * 29)
    assert lo < 0 <= hi
    with pytest.raises(ValueError):
        M.paired_bootstrap([])
