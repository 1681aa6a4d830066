#!/usr/bin/env bash
# Build the "large" benchmark base VM into test-vms/large/out/ from Debian packages only: the tiny VM's
# kernel and initramfs (same /init), booted with 1024 MiB of RAM, and a 1280 MiB ext4 disk holding real
# content — the tiny VM's diskroot plus the whole extracted kernel .deb (/lib/modules: ~1,100 modules,
# ~107 MB) — so that a workload can copy files the base disk already has. See ../README.md.
#
#   bash test-vms/large/build.sh          # build unless out/ matches the recipe (and the tiny VM's outputs)
#   bash test-vms/large/build.sh --force  # rebuild anyway
#
# It never changes test-vms/tiny/out/ beyond running tiny/build.sh (a no-op when that is up to date).
set -euo pipefail
export LC_ALL=C
export PATH=$PATH:/usr/sbin:/sbin
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tiny=$here/../tiny
out=$here/out
MEMORY_MIB=1024
DISK_SIZE=1280M
EPOCH=1700000000
DISK_UUID=c10d1e70-0000-4000-8000-0000000001a6
HASH_SEED=c10d1e70-0000-4000-8000-0000000005ee
OUTPUTS=(vmlinuz initramfs.cpio.gz disk.raw)

die() {
  echo "large/build.sh: $*" >&2
  exit 1
}

force=0
case "${1:-}" in
'') ;;
--force) force=1 ;;
*) die "unknown argument: $1 (use --force)" ;;
esac

bash "$tiny/build.sh" >/dev/null || die "the tiny VM did not build"
# The recipe: this script and the tiny VM's manifest (kernel, initramfs and their versions).
hash=$({ sha256sum <"$here/build.sh"; sha256sum <"$tiny/out/manifest.json"; } | sha256sum | cut -d' ' -f1)
up_to_date() {
  [[ $force == 0 && -f $out/manifest.json ]] || return 1
  grep -q "\"recipeHash\": \"$hash\"" "$out/manifest.json" || return 1
  for f in "${OUTPUTS[@]}"; do [[ -f $out/$f ]] || return 1; done
}
if up_to_date; then
  echo "large VM up to date"
  exit 0
fi
for t in mkfs.ext4 debugfs e2fsck dpkg-deb flock; do command -v "$t" >/dev/null || die "missing $t"; done

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if up_to_date; then
  echo "large VM up to date"
  exit 0
fi
rm -rf "$out"/.build.*
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

kpkg=$(sed -n 's/.*"kernel": { "package": "\([^"]*\)", "version": "\([^"]*\)".*/\1/p' "$tiny/out/manifest.json")
kver=$(sed -n 's/.*"kernel": { "package": "\([^"]*\)", "version": "\([^"]*\)".*/\2/p' "$tiny/out/manifest.json")
deb=$tiny/out/cache/${kpkg}_${kver//:/%3a}_amd64.deb
[[ -f $deb ]] || die "kernel package $deb not cached: run bash test-vms/tiny/build.sh --force"

cp "$tiny/out/vmlinuz" "$tiny/out/initramfs.cpio.gz" "$tmp/"
append=$(sed -n 's/.*"append": "\([^"]*\)".*/\1/p' "$tiny/out/manifest.json")

dr=$tmp/diskroot
cp -R "$tiny/diskroot" "$dr"
dpkg-deb -x "$deb" "$dr"
find "$dr" -type d -exec chmod 0755 {} +
find "$dr" -type f -exec chmod 0644 {} +
find "$dr" -exec touch -h -d "@$EPOCH" {} +
[[ -z $(find "$dr" -name '*[[:space:]"]*') ]] || die "file names must not contain spaces or quotes"
truncate -s "$DISK_SIZE" "$tmp/disk.raw"
E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -b 4096 -I 256 -m 0 -L large -U "$DISK_UUID" \
  -E "lazy_itable_init=0,lazy_journal_init=0,hash_seed=$HASH_SEED,root_owner=0:0" -d "$dr" "$tmp/disk.raw"
{ (cd "$dr" && find . -mindepth 1 | sed 's|^\.||') && printf '/\n/lost+found\n'; } | sort | while read -r p; do
  for f in atime ctime mtime crtime; do echo "sif $p $f @$EPOCH"; done
  echo "sif $p uid 0"
  echo "sif $p gid 0"
done >"$tmp/fix.debugfs"
E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$tmp/fix.debugfs" "$tmp/disk.raw" >/dev/null 2>"$tmp/debugfs.err"
if grep -v '^debugfs [0-9]' "$tmp/debugfs.err" >&2; then die "debugfs failed"; fi
e2fsck -fn "$tmp/disk.raw" >"$tmp/fsck.log" 2>&1 || { cat "$tmp/fsck.log" >&2; die "e2fsck found errors"; }
content=$(du -sb "$dr" | cut -f1)

file_entry() { printf '"%s": { "sha256": "%s", "bytes": %s }' "$1" "$(sha256sum "$tmp/$1" | cut -d' ' -f1)" "$(stat -c %s "$tmp/$1")"; }
cat >"$tmp/manifest.json" <<JSON
{
  "schema": 1,
  "recipeHash": "$hash",
  "kernel": { "package": "$kpkg", "version": "$kver" },
  "append": "$append",
  "memoryMiB": $MEMORY_MIB,
  "contentBytes": $content,
  "files": {
    $(file_entry vmlinuz),
    $(file_entry initramfs.cpio.gz),
    $(file_entry disk.raw)
  }
}
JSON
rm -f "$out/manifest.json"
for f in "${OUTPUTS[@]}"; do mv -f "$tmp/$f" "$out/$f"; done
mv -f "$tmp/manifest.json" "$out/manifest.json"
echo "large VM built in $out ($DISK_SIZE disk, $content bytes of content, ${MEMORY_MIB} MiB RAM)"
