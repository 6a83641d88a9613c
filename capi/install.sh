#!/usr/bin/env bash
# Installs the excam C library the way `cargo cinstall -p excam-capi` lays
# it out, without needing cargo-c: the shared library with its soname
# links, the static library, the header and a pkg-config file.
#
#   capi/install.sh [--prefix /usr/local] [--libdir LIB] [--destdir DIR]
#                   [--profile release] [--target-dir target] [--no-build]
#
# --destdir stages the install under DIR (for packaging and tests); the
# paths inside excam.pc stay those of --prefix. --no-build uses the
# libraries already in TARGET/PROFILE (what `cargo test --release` leaves).
set -euo pipefail

prefix=/usr/local
libdir=
destdir=
profile=release
target_dir=
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --libdir) libdir=$2; shift 2 ;;
        --destdir) destdir=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --target-dir) target_dir=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "capi/install.sh: unknown option $1 (see the comment at its top)" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${target_dir:-${CARGO_TARGET_DIR:-$root/target}}
libdir=${libdir:-$prefix/lib}
includedir=$prefix/include

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
# cargo-c's soname rule: 0.y.z is compatible within 0.y, x.y.z within x.
if [ "$major" = 0 ]; then abi=0.$minor; else abi=$major; fi

if [ "$build" = 1 ]; then
    cargo build --locked --profile "$profile" -p excam-capi --lib \
        --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
fi
# Cargo puts the dev profile in target/debug.
if [ "$profile" = dev ]; then out=$target_dir/debug; else out=$target_dir/$profile; fi
for f in libexcam.so libexcam.a; do
    [ -f "$out/$f" ] || { echo "capi/install.sh: $out/$f is missing (build it, or drop --no-build)" >&2; exit 1; }
done

stage_lib=$destdir$libdir
stage_inc=$destdir$includedir/excam
install -d "$stage_lib/pkgconfig" "$stage_inc"
install -m 644 "$root/capi/include/excam.h" "$stage_inc/excam.h"
install -m 644 "$out/libexcam.a" "$stage_lib/libexcam.a"
install -m 755 "$out/libexcam.so" "$stage_lib/libexcam.so.$version"
# capi/build.rs gives the library the soname libexcam.so.$abi; programs
# linked with -lexcam ask ld.so for that name, found through this link.
ln -sf "libexcam.so.$version" "$stage_lib/libexcam.so.$abi"
ln -sf "libexcam.so.$version" "$stage_lib/libexcam.so"

# What a static link needs besides libexcam.a: Rust's std on Linux.
cat >"$stage_lib/pkgconfig/excam.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=$libdir
includedir=\${prefix}/include

Name: excam
Description: excam VP8 encoder/decoder C API
Version: $version
Libs: -L\${libdir} -lexcam
Libs.private: -lpthread -ldl -lm -lgcc_s -lc
Cflags: -I\${includedir}/excam
PC
echo "installed excam $version into ${destdir}${prefix} (lib: $libdir, header: $includedir/excam/excam.h)"
