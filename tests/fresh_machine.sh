#!/usr/bin/env bash
# The README's two commands on a bare Debian 12 machine: makes a minimal Debian 12 root
# with debootstrap (variant minbase, then only g++ and git added), copies a clean clone of
# this repository's HEAD into it, and runs README command 1 (launch/quickstart.sh), then
# README command 2 (tests/run_all.sh) inside it with chroot. Prints each command's time
# and its last lines; exit 0 when both succeed.
#
#   sudo tests/fresh_machine.sh [ROOT_DIR]       (default: /tmp/txl-fresh-root, reused if present)
#   TXL_FRESH_MIRROR=http://deb.debian.org/debian   Debian mirror for debootstrap
#   TXL_FRESH_COMMANDS="1 2"                        which README commands to run
#
# Not part of tests/run_all.sh: it downloads a base system (~300 MB with g++) and runs the
# whole suite a second time. Needs root (debootstrap, chroot, mounts).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-/tmp/txl-fresh-root}
mirror=${TXL_FRESH_MIRROR:-http://deb.debian.org/debian}
commands=${TXL_FRESH_COMMANDS:-"1 2"}

[[ $(id -u) -eq 0 ]] || { echo "error: tests/fresh_machine.sh needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null ||
  { echo "error: debootstrap is missing and could not be installed"; exit 1; }

stamp() { date -u '+%H:%M:%S'; }
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[i]}" 2>/dev/null; done
}
trap cleanup EXIT
bind() {  # bind SRC DST: bind-mounts a host file system and its submounts (/sys/fs/cgroup,
  # which slurmd needs) into the root, undone on exit
  mkdir -p "$2"
  mount --rbind "$1" "$2" && mount --make-rslave "$2" && mounted+=("$2")
}

mount_file_systems() {  # once the root exists: what apt, Open MPI and SLURM need inside it
  ((${#mounted[@]})) && return
  bind /proc "$target/proc"
  bind /sys "$target/sys"
  bind /dev "$target/dev"
  mkdir -p "$target/dev/shm"
  mount -t tmpfs tmpfs "$target/dev/shm" && mounted+=("$target/dev/shm")
  cp /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null
}

if [[ ! -x $target/usr/bin/g++ ]]; then
  echo "[$(stamp)] debootstrap bookworm (minbase) into $target"
  t0=$SECONDS
  debootstrap --variant=minbase bookworm "$target" "$mirror" >"$target.debootstrap.log" 2>&1 ||
    { tail -n 20 "$target.debootstrap.log"; echo "error: debootstrap failed"; exit 1; }
  mount_file_systems
  chroot "$target" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ git ca-certificates >/dev/null' ||
    { echo "error: installing g++ and git in the root failed"; exit 1; }
  echo "[$(stamp)] base system with g++ and git ready in $((SECONDS - t0)) s"
fi


mount_file_systems

# A clean clone of HEAD: what a user gets, without build folders or untracked files.
rm -rf "$target/root/txl"
git clone -q --no-hardlinks "$repo" "$target/root/txl" || { echo "error: cloning $repo failed"; exit 1; }
echo "[$(stamp)] cloned $(git -C "$repo" rev-parse --short HEAD) into the root"

status=0
run_in_root() {  # run_in_root NAME COMMAND
  local log="$target/root/fresh_$1.log" t0=$SECONDS rc
  echo "[$(stamp)] README command $1: $2"
  chroot "$target" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb bash -c "cd /root/txl && $2" >"$log" 2>&1
  rc=$?
  echo "[$(stamp)] README command $1 exited $rc after $((SECONDS - t0)) s; its last lines:"
  tail -n 8 "$log" | sed 's/^/    /'
  ((rc == 0)) || status=1
}
for c in $commands; do
  case $c in
    1) run_in_root 1 "bash launch/quickstart.sh" ;;
    2) run_in_root 2 "bash tests/run_all.sh" ;;
    *) echo "error: unknown README command '$c' (1 or 2)"; status=1 ;;
  esac
done
echo "fresh machine: $([[ $status -eq 0 ]] && echo PASS || echo FAIL) (logs in $target/root/fresh_*.log)"
exit $status
