# Cross-compile Inference-PIO for 64-bit ARM Linux (aarch64) on an x86-64 Debian host,
# with the arm64 dependencies installed through multiarch and tests run under qemu:
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
#     libpcre2-dev:arm64 libutf8proc-dev:arm64 libcjson-dev:arm64 libmicrohttpd-dev:arm64
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
#   cmake --build build-arm64 -j && ctest --test-dir build-arm64 --output-on-failure
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# pkg-config: only the arm64 .pc files (plus arch-independent ones), never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Run target binaries (tests via ctest) through user-mode qemu, with the
# multiarch libc6:arm64 that the :arm64 packages above pull in (its loader is
# /lib/ld-linux-aarch64.so.1). Not `-L /usr/aarch64-linux-gnu`: that pairs the
# cross package's ld.so with the multiarch libc, and pthread_create then spins
# forever (every test that starts a thread pool hung).
# PIO_TEST_QUICK=1 shrinks test_kernels_simd's shapes for the emulator.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
