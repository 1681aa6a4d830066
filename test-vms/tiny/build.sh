#!/usr/bin/env bash
# Build the tiny test VM (kernel + initramfs + ext4 disk) from Debian packages only,
# byte-reproducibly, into test-vms/tiny/out/. See ../README.md.
#
#   bash test-vms/tiny/build.sh                # build unless out/ matches the recipe
#   bash test-vms/tiny/build.sh --force        # rebuild anyway (e.g. to pick up a newer kernel ABI)
#   bash test-vms/tiny/build.sh --recipe-hash  # print the recipe hash and exit
set -euo pipefail
export LC_ALL=C # byte-order sorting everywhere (mke2fs -d sorts with strcoll)
export PATH=$PATH:/usr/sbin:/sbin # mkfs.ext4 and debugfs live there; non-root PATHs often lack them
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$here/out
cache=$out/cache # downloaded .deb files, kept across rebuilds

APPEND='console=ttyS0 quiet panic=-1 init_on_free=1'
# Load order matters: virtio needs virtio_ring (virtio_break_device).
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
  failover net_failover virtio_net)
# Fixed inputs for reproducibility: every timestamp, the fs UUID and the htree hash seed.
EPOCH=1700000000
DISK_UUID=c10d1e70-0000-4000-8000-00000000d15c
HASH_SEED=c10d1e70-0000-4000-8000-0000000005ed
DISK_SIZE=64M
OUTPUTS=(vmlinuz initramfs.cpio.gz disk.raw)

die() {
  echo "build.sh: $*" >&2
  exit 1
}

# sha256 over "sha256  path" lines of every recipe file; src/index.ts computes the same.
recipe_hash() {
  (cd "$here" && { printf '%s\n' build.sh init profile && find diskroot -type f; } |
    sort | xargs -d '\n' sha256sum | sha256sum | cut -d' ' -f1)
}

force=0
case "${1:-}" in
'') ;;
--force) force=1 ;;
--recipe-hash)
  recipe_hash
  exit 0
  ;;
*) die "unknown argument: $1 (use --force or --recipe-hash)" ;;
esac

hash=$(recipe_hash)
up_to_date() {
  [[ $force == 0 && -f $out/manifest.json ]] || return 1
  grep -q "\"recipeHash\": \"$hash\"" "$out/manifest.json" || return 1
  for f in "${OUTPUTS[@]}"; do [[ -f $out/$f ]] || return 1; done
}
if up_to_date; then
  echo "tiny VM up to date"
  exit 0
fi

need() { command -v "$1" >/dev/null || die "missing '$1': apt-get install $2"; }
need apt-get apt
need dpkg-deb dpkg
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need e2fsck e2fsprogs
need cpio cpio
need gzip gzip
need flock util-linux
# The dynamic 'busybox' package also ships /bin/busybox but would not run in the initramfs.
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
  die "missing busybox-static: apt-get install busybox-static"

mkdir -p "$out" "$cache"
exec 9>"$out/.lock"
flock 9 # a concurrent build finishes first; then we may already be up to date
if up_to_date; then
  echo "tiny VM up to date"
  exit 0
fi

# Build in a temp folder next to out/ so the final renames stay on one filesystem.
rm -rf "$out"/.build.* # left by a killed build; safe under the lock
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- kernel: the current ABI package behind the linux-image-cloud-amd64 metapackage ---
resolve_kernel() {
  { apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }'
}
kpkg=$(resolve_kernel)
if [[ -z $kpkg ]]; then
  echo "apt lists missing: running apt-get update"
  apt-get update -qq || die "apt-get update failed (run as root?)"
  kpkg=$(resolve_kernel)
fi
[[ -n $kpkg ]] || die "cannot resolve linux-image-cloud-amd64 (is deb.debian.org in apt sources?)"
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
deb=$cache/${kpkg}_${kver//:/%3a}_amd64.deb
if [[ ! -f $deb ]]; then
  # Download only: installing would pull in initramfs-tools and run update-initramfs.
  # Sandbox user root: _apt cannot write into our private temp dir.
  (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$kpkg=$kver") ||
    die "apt-get download $kpkg=$kver failed (stale apt lists? run apt-get update)"
  mv "$tmp/$(basename "$deb")" "$deb"
fi
dpkg-deb -x "$deb" "$tmp/kernel"
vmlinuz=("$tmp"/kernel/boot/vmlinuz-*)
[[ ${#vmlinuz[@]} == 1 && -f ${vmlinuz[0]} ]] || die "expected one vmlinuz in $deb"
cp "${vmlinuz[0]}" "$tmp/vmlinuz"

# --- initramfs: busybox-static + the virtio modules + /init ---
rd=$tmp/initramfs
mkdir -p "$rd"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,root,lib/modules}
install -m 0755 /bin/busybox "$rd/bin/busybox"
install -m 0755 "$here/init" "$rd/init"
install -m 0644 "$here/profile" "$rd/etc/profile"
for m in "${MODULES[@]}"; do
  ko=$(find "$tmp/kernel" -path '*/modules/*' -name "$m.ko")
  [[ -n $ko && $(wc -l <<<"$ko") == 1 ]] || die "expected exactly one $m.ko in $deb"
  install -m 0644 "$ko" "$rd/lib/modules/$m.ko"
done
printf '%s\n' "${MODULES[@]}" >"$rd/lib/modules/load.order"
find "$rd" -exec touch -h -d "@$EPOCH" {} +
(cd "$rd" && find . -print0 | sort -z |
  cpio --quiet --null --create --format=newc --reproducible --owner=0:0) | gzip -9 -n >"$tmp/initramfs.cpio.gz"

# --- disk: ext4 populated from diskroot/ ---
dr=$tmp/diskroot
cp -R "$here/diskroot" "$dr"
find "$dr" -type d -exec chmod 0755 {} +
find "$dr" -type f -exec chmod 0644 {} +
find "$dr" -exec touch -h -d "@$EPOCH" {} +
truncate -s "$DISK_SIZE" "$tmp/disk.raw"
E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -b 4096 -I 256 -m 0 -L tiny -U "$DISK_UUID" \
  -E "lazy_itable_init=0,lazy_journal_init=0,hash_seed=$HASH_SEED,root_owner=0:0" -d "$dr" "$tmp/disk.raw"
# mke2fs -d copies each source file's atime/ctime (which cannot be set) and uid/gid;
# pin them, plus the times of / and lost+found, with a debugfs script.
[[ -z $(find "$dr" -name '*[[:space:]"]*') ]] || die "diskroot names must not contain spaces or quotes"
{ (cd "$dr" && find . -mindepth 1 | sed 's|^\.||') && printf '/\n/lost+found\n'; } | sort | while read -r p; do
  for f in atime ctime mtime crtime; do echo "sif $p $f @$EPOCH"; done
  echo "sif $p uid 0"
  echo "sif $p gid 0"
done >"$tmp/fix.debugfs"
E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$tmp/fix.debugfs" "$tmp/disk.raw" >/dev/null 2>"$tmp/debugfs.err"
if grep -v '^debugfs [0-9]' "$tmp/debugfs.err" >&2; then die "debugfs failed"; fi
e2fsck -fn "$tmp/disk.raw" >"$tmp/fsck.log" 2>&1 || { cat "$tmp/fsck.log" >&2; die "e2fsck found errors in disk.raw"; }

# --- manifest, then move into place; manifest.json goes last and marks the set complete ---
bbver=$(dpkg-query -W -f '${Version}' busybox-static)
file_entry() { printf '"%s": { "sha256": "%s", "bytes": %s }' "$1" "$(sha256sum "$tmp/$1" | cut -d' ' -f1)" "$(stat -c %s "$tmp/$1")"; }
cat >"$tmp/manifest.json" <<EOF
{
  "schema": 1,
  "recipeHash": "$hash",
  "kernel": { "package": "$kpkg", "version": "$kver" },
  "busybox": { "package": "busybox-static", "version": "$bbver" },
  "append": "$APPEND",
  "files": {
    $(file_entry vmlinuz),
    $(file_entry initramfs.cpio.gz),
    $(file_entry disk.raw)
  }
}
EOF
rm -f "$out/manifest.json"
for f in "${OUTPUTS[@]}"; do mv -f "$tmp/$f" "$out/$f"; done
mv -f "$tmp/manifest.json" "$out/manifest.json"
echo "tiny VM built in $out (kernel $kpkg $kver, busybox $bbver)"
