#!/bin/bash
# Usage: bash bench/iiod_readdev.sh (after scripts/build.sh release)
# 512 MiB read by libiio's iio_readdev through zbufd's iiod (the network backend, fileio
# inside the daemon) against zbuf stream --daemon iio-to-app (fileio and zero-copy, every byte
# checked), alternating, five repetitions per block size. docs/iiod.md has the results.
set -e
B=$(cd "$(dirname "$0")/.." && pwd)/build/release
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
$B/zbufd --socket $DIR/zbufd.sock --iiod-port 0 > $DIR/zbufd.log 2>&1 & ZP=$!
for i in $(seq 100); do grep -q "iiod on" $DIR/zbufd.log && break; sleep 0.1; done
PORT=$(grep -o "127.0.0.1:[0-9]*" $DIR/zbufd.log | cut -d: -f2)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
BYTES=$((512*1024*1024))
for samples in 2048 8192 131072; do
 blk=$((samples*8))
 for rep in 1 2 3 4 5; do
  t0=$(date +%s.%N); n=$(iio_readdev -u ip:127.0.0.1:$PORT -b $samples -s $((BYTES/8)) iio:device0 | wc -c); t1=$(date +%s.%N)
  r=$(python3 -c "print(f'{$n/($t1-$t0)/2**20:.0f}')")
  zj=$($B/zbuf stream --daemon $DIR/zbufd.sock --path iio-to-app --mode both --bytes $BYTES -b $samples -J 2>/dev/null | python3 -c "
import json,sys;d=json.load(sys.stdin)
print(' '.join(f\"{r['mode']}={r['mib_per_s']:.0f}\" for r in d['runs']))")
  echo "block $blk B rep $rep: iio_readdev via iiod ${r} MiB/s ($n bytes); zbuf stream --daemon: $zj"
 done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
kill $ZP; wait $ZP || true
