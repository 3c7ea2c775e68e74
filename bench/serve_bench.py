"""Load test of `steep serve`: latency and throughput at 1, 8 and 32 concurrent clients, against
single-request Hugging Face `generate` on the same model in this process as the baseline.

    python bench/serve_bench.py                      # the built-in model
    python bench/serve_bench.py --run demo/runs/demo # a run's tuned model (its adapter on the base)

The server runs as its own process (`steep serve`), as users run it; clients stream with httpx.
Every request asks for greedy answers of at most --max-tokens tokens to the demo's questions.
Figures go to bench/results/serve.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    "Where was Rendas Torbel born?", "Which company employs Ostzan Pollis?", "What did Drucor Garib study?",
    "In which year was Zanwen Dassav born?", "Where does Hulhul Ibzan live?", "Which university did Corin Vale attend?",
    "Who founded the company Ada works for?", "What is the capital of France?",
]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def baseline(model_spec: str, run: Path | None, max_tokens: int, repeats: int) -> dict:
    """One request at a time through transformers' generate, streamed to time the first token."""
    import torch
    from transformers import TextIteratorStreamer

    from steep.config import load_config
    from steep.export import tuned_checkpoint
    from steep.models import bf16_supported, load_model, load_tokenizer, resolve_model

    if run is not None:
        model, tok = tuned_checkpoint(run)
        system = load_config(run / "config.yaml").system_prompt
    else:
        path = resolve_model(model_spec)
        model, tok, system = load_model(path), load_tokenizer(path), None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_supported())
    firsts, rates, tokens = [], [], 0
    started = time.perf_counter()
    for i in range(repeats):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(tok, skip_prompt=True)
        t0 = time.perf_counter()
        out: dict = {}

        def generate() -> None:
            with torch.inference_mode(), autocast:
                out["ids"] = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False, streamer=streamer,
                                            pad_token_id=tok.pad_token_id)

        thread = threading.Thread(target=generate)
        thread.start()
        first = None
        for piece in streamer:
            if piece and first is None:
                first = time.perf_counter() - t0
        thread.join()
        elapsed = time.perf_counter() - t0
        n = out["ids"].shape[1] - ids["input_ids"].shape[1]
        tokens += n
        firsts.append(first or elapsed)
        rates.append(n / elapsed)
    wall = time.perf_counter() - started
    return {"requests": repeats, "first_token_p50_s": round(statistics.median(firsts), 3),
            "tokens_per_s_per_client": round(statistics.median(rates), 1), "throughput_tokens_per_s": round(tokens / wall, 1)}


async def one_request(http: httpx.AsyncClient, model: str, question: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first token, seconds in all, completion tokens) of one streamed request."""
    t0 = time.perf_counter()
    first = None
    usage = 0
    body = {"model": model, "messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            elif first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first or total, total, usage


async def load(url: str, model: str, clients: int, requests_per_client: int, max_tokens: int) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        async def client(c: int) -> list[tuple[float, float, int]]:
            return [await one_request(http, model, QUESTIONS[(c + r) % len(QUESTIONS)], max_tokens) for r in range(requests_per_client)]

        started = time.perf_counter()
        results = [r for rs in await asyncio.gather(*[client(c) for c in range(clients)]) for r in rs]
        wall = time.perf_counter() - started
    firsts, totals, tokens = [r[0] for r in results], [r[1] for r in results], sum(r[2] for r in results)
    return {"clients": clients, "requests": len(results), "completion_tokens": tokens, "wall_s": round(wall, 1),
            "throughput_tokens_per_s": round(tokens / wall, 1),
            "tokens_per_s_per_client": round(statistics.median(r[2] / r[1] for r in results), 1),
            "first_token_p50_s": round(percentile(firsts, 0.5), 3), "first_token_p90_s": round(percentile(firsts, 0.9), 3),
            "latency_p50_s": round(percentile(totals, 0.5), 2), "latency_p90_s": round(percentile(totals, 0.9), 2),
            "latency_p99_s": round(percentile(totals, 0.99), 2)}


def start_server(run: Path | None, model: str, port: int) -> subprocess.Popen:
    steep = Path(sys.executable).with_name("steep")
    args = [str(steep), "serve", "--port", str(port), "--max-batch", "32"] + ([str(run)] if run else ["--model", model])
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"steep serve exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(1)
    server.kill()
    raise SystemExit("steep serve did not start in 5 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="serve this run's tuned model (default: the built-in model)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests-per-client", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    print("baseline: single-request transformers generate ...", flush=True)
    results = {"model": str(args.run or args.model), "max_tokens": args.max_tokens,
               "baseline": baseline(args.model, args.run, args.max_tokens, repeats=8), "server": []}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(args.run, args.model, port)
    try:
        model = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"][-1]["id"]
        asyncio.run(load(f"http://127.0.0.1:{port}", model, 1, 2, args.max_tokens))  # warm-up
        for clients in args.clients:
            print(f"{clients} concurrent client(s) ...", flush=True)
            requests_per_client = args.requests_per_client if clients < 32 else max(1, args.requests_per_client // 2)
            results["server"].append(asyncio.run(load(f"http://127.0.0.1:{port}", model, clients, requests_per_client, args.max_tokens)))
    finally:
        server.terminate()
        server.wait(30)

    base = results["baseline"]
    print(f"\nmodel {results['model']}, greedy, at most {args.max_tokens} new tokens per answer\n")
    print("| setting | first token p50 | tokens/s per client | throughput tokens/s | × baseline | latency p50 / p90 / p99 |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| HF generate, one request at a time | {base['first_token_p50_s']} s | {base['tokens_per_s_per_client']} | "
          f"{base['throughput_tokens_per_s']} | 1.00 | |")
    for r in results["server"]:
        ratio = r["throughput_tokens_per_s"] / base["throughput_tokens_per_s"]
        print(f"| steep serve, {r['clients']} client(s) | {r['first_token_p50_s']} s (p90 {r['first_token_p90_s']}) | "
              f"{r['tokens_per_s_per_client']} | {r['throughput_tokens_per_s']} | {ratio:.2f} | "
              f"{r['latency_p50_s']} / {r['latency_p90_s']} / {r['latency_p99_s']} s |")
    out = HERE / "results" / "serve.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
