"""Benchmark: fp32 against bf16 matrix products of SmolLM2-135M's shapes on this CPU, the choice
`train.bf16=auto` makes (bf16 only where the CPU has AVX512-bf16 or AMX). Prints GFLOPS for each
and whether `bf16_supported()` would turn bf16 on.

Usage: python bench/matmul_dtypes.py"""

from __future__ import annotations

import time

import torch

from steep.models import bf16_supported

SHAPES = [(1024, 576, 1536), (1024, 1536, 576), (512, 576, 49152)]  # MLP up, MLP down, output layer (rows x in x out)


def gflops(a: torch.Tensor, b: torch.Tensor, repeats: int = 3) -> float:
    a @ b  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] * repeats / (time.perf_counter() - started) / 1e9


def main() -> None:
    print(f"bf16_supported(): {bf16_supported()}, CPU capability: {torch.backends.cpu.get_cpu_capability()}")
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        fp32, bf16 = gflops(a, b), gflops(a.bfloat16(), b.bfloat16())
        print(f"{m} x {k} x {n}: fp32 {fp32:.1f} GFLOPS, bf16 {bf16:.1f} GFLOPS (bf16 at {bf16 / fp32:.3f}x the fp32 rate)")

if __name__ == "__main__":
    main()
