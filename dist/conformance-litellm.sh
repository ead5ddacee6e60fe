#!/usr/bin/env bash
# Provider conformance against real third-party servers, all on 127.0.0.1 with no key and
# no network beyond PyPI: the LiteLLM proxy, whose OpenAI- and Anthropic-compatible routes
# answer with `mock_response`, and for the `ollama` kind ollama-proxy-plus (PyPI), a server
# speaking Ollama's native API (`/api/chat`, NDJSON streaming) that routes to an
# OpenAI-compatible backend, here that same LiteLLM mock. Each provider kind is driven
# through the real binary, streaming on and off; every turn must be answered by that
# provider in one attempt with the mock text (no broken stream, no fallback).
#
# Not run by .ci/run: the install is about 750 MB and three minutes (docs/providers.md).
# Run it before a release:   bash dist/conformance-litellm.sh [path/to/openclaw-rs]
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
OLLAMA_PROXY_VERSION="${OLLAMA_PROXY_VERSION:-0.1.0}"
VENV="${OPENCLAW_RS_CONFORMANCE_VENV:-/tmp/openclaw-rs-litellm}"
BIN="${1:-${CARGO_TARGET_DIR:-target}/debug/openclaw-rs}"
REPLY="conformance reply from litellm"
KEY="sk-conformance-$$"

[ -x "$BIN" ] || { echo "no binary at $BIN: run cargo build or pass its path" >&2; exit 2; }
if [ ! -x "$VENV/bin/litellm" ] || [ ! -x "$VENV/bin/ollama-proxy" ]; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "litellm[proxy]==$LITELLM_VERSION" "ollama-proxy-plus==$OLLAMA_PROXY_VERSION"
fi

work=$(mktemp -d)
proxy_pid=
ollama_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$ollama_pid" ] && kill "$ollama_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cat >"$work/litellm.yaml" <<YAML
model_list:
  - model_name: mock-model
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: sk-unused
      mock_response: "$REPLY"
general_settings:
  master_key: $KEY
YAML
port=$(free_port)
"$VENV/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$port" \
  >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 120); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/health/liveliness" && break
  kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.log" >&2; exit 1; }
  sleep 1
done
curl -fs -o /dev/null "http://127.0.0.1:$port/health/liveliness" ||
  { echo "the proxy did not come up" >&2; cat "$work/proxy.log" >&2; exit 1; }

# The Ollama-protocol server: a model named `litellm/<name>` goes to the OpenAI-compatible
# provider registered as `litellm` through these variables (its own convention).
ollama_port=$(free_port)
PROVIDERS_LITELLM_API_KEY="$KEY" PROVIDERS_LITELLM_BASE_URL="http://127.0.0.1:$port/v1" \
  "$VENV/bin/ollama-proxy" --host 127.0.0.1 --port "$ollama_port" >"$work/ollama.log" 2>&1 &
ollama_pid=$!
for _ in $(seq 60); do
  curl -fs -o /dev/null "http://127.0.0.1:$ollama_port/api/version" && break
  kill -0 "$ollama_pid" 2>/dev/null || { cat "$work/ollama.log" >&2; exit 1; }
  sleep 1
done
curl -fs -o /dev/null "http://127.0.0.1:$ollama_port/api/version" ||
  { echo "ollama-proxy did not come up" >&2; cat "$work/ollama.log" >&2; exit 1; }

home="$work/home"
mkdir -p "$home"
printf '%s\n' "$KEY" >"$home/key"
{
  printf '[self_heal]\nfallback = []\n[chat]\nrecall_hits = 0\n'
  for streaming in true false; do
    printf '[providers.openai-%s]\nkind = "openai"\nbase_url = "http://127.0.0.1:%s/v1"\n' "$streaming" "$port"
    printf 'api_key = "file:%s/key"\nmodel = "mock-model"\ncapabilities = { streaming = %s }\n' "$home" "$streaming"
    printf '[providers.anthropic-%s]\nkind = "anthropic"\nbase_url = "http://127.0.0.1:%s"\n' "$streaming" "$port"
    printf 'api_key = "file:%s/key"\nmodel = "mock-model"\ncapabilities = { streaming = %s }\n' "$home" "$streaming"
    printf '[providers.ollama-%s]\nkind = "ollama"\nbase_url = "http://127.0.0.1:%s"\n' "$streaming" "$ollama_port"
    printf 'model = "litellm/mock-model"\ncapabilities = { streaming = %s }\n' "$streaming"
  done
} >"$home/config.toml"

failed=0
for provider in openai-true openai-false anthropic-true anthropic-false ollama-true ollama-false; do
  out=$("$BIN" --home "$home" chat --session "c-$provider" --provider "$provider" --json "hello" 2>"$work/err") || true
  verdict=$(python3 - "$provider" "$REPLY" "$out" <<'PY'
import json, sys
provider, reply, out = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.loads(out)
except ValueError:
    print(f"not JSON: {out[:300]!r}"); sys.exit()
attempts = r.get("runtime", {}).get("selfHealing", {}).get("attempts", [])
if r.get("ok") is False:
    print(f"failed: {r.get('error', {}).get('message')}")
elif r.get("reply") != reply:
    print(f"reply {r.get('reply')!r}")
elif r.get("provider") != provider or len(attempts) != 1:
    print(f"answered by {r.get('provider')} after attempts {attempts}")
else:
    print("ok")
PY
)
  printf '%-16s %s\n' "$provider" "$verdict"
  if [ "$verdict" != ok ]; then
    failed=1
    sed 's/^/    /' "$work/err" >&2
  fi
done
[ "$failed" = 0 ] &&
  echo "conformance: ok (LiteLLM $LITELLM_VERSION, ollama-proxy-plus $OLLAMA_PROXY_VERSION)"
exit "$failed"
