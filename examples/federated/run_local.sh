#!/bin/sh
# Runs `lepton federated` on this machine: a server (rank 0) and one client per CSV, on 127.0.0.1.
#
#   run_local.sh LEPTON REQUIREMENTS OUT CLIENT.csv [CLIENT.csv ...]
#
# Extra flags for every rank go in LEPTON_FEDERATED_FLAGS, for example
# LEPTON_FEDERATED_FLAGS="--rounds 30 --secure-aggregation". Each rank's output goes to OUT/rank<k>.log.
# The script exits with the first non-zero exit status of a rank.
set -u
if [ "$#" -lt 4 ]; then
  echo "usage: $0 LEPTON REQUIREMENTS OUT CLIENT.csv [CLIENT.csv ...]" >&2
  exit 2
fi
lepton=$1
requirements=$2
out=$3
shift 3
mkdir -p "$out" || exit 1

world_size=$(($# + 1))
# A port above the usual 29500, chosen per process so that two local groups rarely collide.
port=$((30000 + $$ % 20000))
common="--world-size $world_size --master-addr 127.0.0.1 --master-port $port -r $requirements ${LEPTON_FEDERATED_FLAGS:-}"

"$lepton" federated --role server --rank 0 --out "$out" $common > "$out/rank0.log" 2>&1 &
pids=$!
rank=1
for data in "$@"; do
  "$lepton" federated --role client --rank "$rank" --data "$data" $common > "$out/rank$rank.log" 2>&1 &
  pids="$pids $!"
  rank=$((rank + 1))
done

status=0
rank=0
for pid in $pids; do
  wait "$pid"
  code=$?
  if [ "$code" -ne 0 ]; then
    echo "rank $rank exited with status $code; see $out/rank$rank.log" >&2
    [ "$status" -eq 0 ] && status=$code
  fi
  rank=$((rank + 1))
done
exit "$status"
