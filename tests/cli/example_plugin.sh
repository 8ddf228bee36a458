#!/usr/bin/env bash
# example_plugin.sh - the out-of-tree plugin example and `pio plugins`.
#
# Builds examples/hello_plugin with its own CMakeLists (public headers only),
# checks that `pio plugins --plugin-dir` lists it, then compiles broken
# plugins from small C snippets (no entry symbol, wrong ABI version, a
# missing required method, not an ELF file, a duplicate name) and checks that
# each is reported clearly on stderr while the good plugin is still listed.
# Env: PIO (the pio binary), PIO_SOURCE_DIR (repo root; default: from $0).
set -u

SRC=${PIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${PIO:-}" ] || [ ! -x "$PIO" ]; then
    echo "SKIP: PIO (${PIO:-unset}) is not an executable pio binary"
    exit 77
fi
for tool in cmake cc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found"
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pio_example_plugin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n_pass=0
n_fail=0

# expect DESCRIPTION COMMAND...: record pass/fail of a test command.
expect() {
    local what=$1
    shift
    if "$@"; then
        n_pass=$((n_pass + 1))
    else
        n_fail=$((n_fail + 1))
        echo "FAIL: $what" >&2
    fi
}
# has FILE TEXT: FILE contains TEXT (fixed string).
has() { grep -qF -- "$2" "$1"; }
# lacks FILE TEXT
lacks() { ! grep -qF -- "$2" "$1"; }
# show: print the last command's output, for failures.
show() { echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; echo "---"; }

# ---- build the example out of tree -----------------------------------------
if ! { cmake -S "$SRC/examples/hello_plugin" -B "$tmp/hello" \
             -DPIO_INCLUDE_DIR="$SRC/include" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$tmp/hello"; } >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log"
    echo "FAIL: examples/hello_plugin does not build"
    exit 1
fi
hello_so="$tmp/hello/pio_hello.so"
expect "hello plugin built at $hello_so" test -f "$hello_so"

# ---- list it ------------------------------------------------------------------
"$PIO" plugins --plugin-dir "$tmp/hello" >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "pio plugins --plugin-dir exits 0 (got $rc)" test "$rc" -eq 0
expect "hello listed" has "$tmp/out" "hello (ABI 2)"
expect "hello's architecture listed" has "$tmp/out" "HelloForCausalLM"
expect "hello's description listed" has "$tmp/out" "always predicts"
expect "hello's origin listed" has "$tmp/out" "pio_hello.so"
[ "$n_fail" -eq 0 ] || show

"$PIO" plugins --no-default --plugin-dir "$tmp/hello" --json >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "--json exits 0 (got $rc)" test "$rc" -eq 0
if command -v python3 >/dev/null 2>&1; then
    expect "--json output parses and lists exactly hello" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
names = [p["name"] for p in d["plugins"]]
assert names == ["hello"], names
p = d["plugins"][0]
assert p["abi_version"] == 2 and p["architectures"] == ["HelloForCausalLM"], p
assert p["origin"].endswith("pio_hello.so") and d["errors"] == [], d
' "$tmp/out"
else
    expect "--json names hello" has "$tmp/out" '"name":	"hello"'
fi

PIO_PLUGIN_PATH="/nonexistent:$tmp/hello" "$PIO" plugins >"$tmp/out" 2>"$tmp/err"
expect "PIO_PLUGIN_PATH finds hello" has "$tmp/out" "hello (ABI 2)"

# ---- run the toy model through the manager and the greedy sampler -------------
# From token 14 with vocab_size 16, greedy decoding must count 15 0 1 2 3.
build_dir=${PIO_BUILD_DIR:-$(dirname "$PIO")}
if [ -f "$build_dir/libpio.so" ]; then
    cat >"$tmp/drive.c" <<'C'
#include <pio/plugin.h>
#include <pio/sampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define TRY(x) do { if ((x) != PIO_STATUS_OK) { fprintf(stderr, "%s: %s\n", #x, pio_last_error()); return 1; } } while (0)
int main(int argc, char **argv)
{
    pio_hf_config cfg;
    const pio_model_plugin *p;
    pio_plugin_ctx *ctx;
    pio_options opts = { 0 };
    pio_sampler *s;
    float logits[16];
    char *json = NULL;
    int32_t tok = 14, pos = 0, seq = 0;
    uint8_t want = 1;
    (void)argc;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.path, "config.json");
    strcpy(cfg.architecture, "HelloForCausalLM");
    cfg.vocab_size = 16;
    pio_model_files files = { ".", &cfg, NULL, NULL };
    TRY(pio_plugins_load_file(argv[1]));
    TRY(pio_plugins_select(&cfg, &p));
    TRY(p->initialize(&ctx, &opts));
    TRY(p->load_model(ctx, &files));
    TRY(pio_sampler_new(NULL, 16, 16, &s));
    for (int step = 0; step < 5; step++, pos++) {
        pio_batch b = { 1, &tok, &pos, &seq, &want };
        TRY(p->infer(ctx, &b, NULL, logits));
        tok = pio_sampler_sample(s, logits, &tok, 1);
        printf("%d ", (int)tok);
    }
    TRY(p->execute(ctx, "hello", "{}", &json));
    printf("%s\n", json);
    free(json);
    pio_sampler_free(s);
    p->cleanup(ctx);
    pio_plugins_reset();
    return 0;
}
C
    # A sanitizer build's libpio needs the driver linked with the runtime.
    san=""
    if ldd "$build_dir/libpio.so" 2>/dev/null | grep -q libasan; then
        san="-fsanitize=address,undefined"
    fi
    if cc -std=gnu11 $san -I"$SRC/include" -o "$tmp/drive" "$tmp/drive.c" \
          -L"$build_dir" -lpio -Wl,-rpath,"$build_dir" 2>"$tmp/cc.log"; then
        "$tmp/drive" "$hello_so" >"$tmp/out" 2>"$tmp/err"
        expect "toy model counts 15 0 1 2 3 under greedy decoding" \
            grep -qF "15 0 1 2 3 " "$tmp/out"
        expect "execute(\"hello\") answers" has "$tmp/out" "hello from the hello plugin"
        [ "$n_fail" -eq 0 ] || show
    else
        cat "$tmp/cc.log"
        expect "driver compiles against $build_dir/libpio.so" false
    fi
else
    echo "note: $build_dir/libpio.so absent; toy-model run skipped"
fi

# ---- broken plugins beside a good one ------------------------------------------
mixed="$tmp/mixed"
mkdir -p "$mixed"
cp "$hello_so" "$mixed/pio_hello.so"
cp "$hello_so" "$mixed/pio_hello_copy.so"        # same name "hello" again
echo "this is not an ELF file" >"$mixed/notelf.so"
echo "not a plugin either, but not *.so" >"$mixed/README.txt"

cat >"$tmp/noentry.c" <<'C'
int pio_plugin_entry_misspelled(void) { return 0; }
C
cat >"$tmp/badabi.c" <<'C'
#include <pio/plugin.h>
static const pio_model_plugin table = { .abi_version = 7, .name = "future" };
const pio_model_plugin *pio_plugin_entry(void) { return &table; }
C
cat >"$tmp/noinfer.c" <<'C'
#include <pio/plugin.h>
static pio_status init(pio_plugin_ctx **c, const pio_options *o) { (void)o; *c = 0; return PIO_STATUS_OK; }
static pio_status load(pio_plugin_ctx *c, const pio_model_files *f) { (void)c; (void)f; return PIO_STATUS_OK; }
static pio_status info(pio_plugin_ctx *c, pio_model_info *i) { (void)c; (void)i; return PIO_STATUS_OK; }
static void done(pio_plugin_ctx *c) { (void)c; }
static const char *const archs[] = { "NoInferForCausalLM", 0 };
static const pio_model_plugin table = {
    .abi_version = PIO_PLUGIN_ABI_VERSION, .name = "noinfer", .hf_architectures = archs,
    .initialize = init, .load_model = load, .get_model_info = info, .cleanup = done,
};
const pio_model_plugin *pio_plugin_entry(void) { return &table; }
C
for name in noentry badabi noinfer; do
    if ! cc -shared -fPIC -I"$SRC/include" -o "$mixed/$name.so" "$tmp/$name.c" 2>"$tmp/cc.log"; then
        cat "$tmp/cc.log"
        echo "FAIL: cannot compile $name.c"
        exit 1
    fi
done

n_before=$n_fail
"$PIO" plugins --no-default --plugin-dir "$mixed" >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "broken plugins do not fail the listing (rc $rc)" test "$rc" -eq 0
expect "good plugin still listed" has "$tmp/out" "hello (ABI 2)"
expect "only one plugin listed" has "$tmp/out" "1 plugin:"
expect "no entry: file and symbol named" \
    grep -qE 'noentry\.so: no "pio_plugin_entry" symbol.*undefined symbol' "$tmp/err"
expect "wrong ABI: versions stated" \
    has "$tmp/err" "badabi.so: plugin ABI version 7, this pio expects 2"
expect "missing method: file and method named" \
    grep -qE 'noinfer\.so: plugin "noinfer" has no infer method' "$tmp/err"
expect "non-ELF: file named, dlopen reason given" \
    grep -qE 'notelf\.so: cannot load plugin: .+' "$tmp/err"
expect "duplicate name: both files named" \
    grep -qE 'pio_hello_copy\.so: a plugin named "hello" is already registered \(from .*pio_hello\.so\)' "$tmp/err"
expect "README.txt ignored" lacks "$tmp/err" "README.txt"
expect "failing plugins not listed" lacks "$tmp/out" "future"
[ "$n_fail" -eq "$n_before" ] || show

# The same plugin in an earlier directory wins; the later one is a note.
"$PIO" plugins --no-default --plugin-dir "$tmp/hello" --plugin-dir "$mixed" >"$tmp/out" 2>"$tmp/err"
expect "first directory's hello listed" grep -qF "origin:        $(cd "$tmp/hello" && pwd -P)/pio_hello.so" "$tmp/out"
expect "later hello skipped with a note" \
    grep -qE 'mixed/pio_hello\.so: a plugin named "hello" is already registered' "$tmp/err"

# ---- usage ---------------------------------------------------------------------
"$PIO" plugins --help >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "--help exits 0" test "$rc" -eq 0
expect "--help prints usage" has "$tmp/out" "usage: pio plugins"
"$PIO" plugins --bogus >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "unknown option exits 2 (got $rc)" test "$rc" -eq 2
"$PIO" plugins --no-default --plugin-dir "$tmp/does-not-exist" >"$tmp/out" 2>"$tmp/err"
rc=$?
expect "missing --plugin-dir exits 1 (got $rc)" test "$rc" -eq 1
expect "missing --plugin-dir named" has "$tmp/err" "does-not-exist"

echo "example_plugin: $n_pass passed, $n_fail failed"
[ "$n_fail" -eq 0 ]
