#!/bin/sh
# Training speed of bnas against the float reference torch_bnn.py (PyTorch CPU,
# Debian python3-torch; not a dependency of bnas), same recipe, same machine,
# measured in one run. Writes results/speed.csv and results/accuracy.csv, then
# the tables (table.py). Usage: experiments/speed/run.sh [--quick] [BNAS]
#   speed: FC512-FC512 on all 60,000 images and VGG3 on 6,000, two epochs each,
#          the second one timed, 3 interleaved repeats (medians); accuracy: FC512-FC512, 3 epochs, seeds 1-3.
#   --quick: 12,000 / 1,200 images, accuracy with 1 epoch on 12,000 images.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
quick=0
[ "${1:-}" = "--quick" ] && { quick=1; shift; }
bnas=${1:-$here/../../build/bnas}
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "run.sh: needs PyTorch: apt-get install python3-torch" >&2; exit 1; }
out=$here/results
mkdir -p "$out" /tmp/bnas_speed.$$
tmp=/tmp/bnas_speed.$$
if [ $quick = 1 ]; then fc=12000 vgg=1200 acc_ep=1 acc_img=12000; suffix=_quick; echo "run.sh: quick mode (fewer images and epochs)"
else fc=60000 vgg=6000 acc_ep=3 acc_img=60000; suffix=; fi
speed=$out/speed$suffix.csv accf=$out/accuracy$suffix.csv
echo "impl,network,threads,images,seconds,load" > "$speed"
bnas_epoch() { # network images epochs seed -> "seconds_of_last_epoch test_acc"
    "$bnas" train --topology "$1" --train-images "$2" --epochs "$3" --seed "$4" --val 0 --threads 2 -o "$tmp/m.bnm" > "$tmp/log" 2>&1
    s=$(grep '^epoch' "$tmp/log" | tail -1 | awk '{print $(NF-1)}')
    a=$(grep '^test accuracy' "$tmp/log" | awk '{print $3}' | tr -d '%')
    echo "$s $a"
}
for net in FC512-FC512 C64-MP2-C64-MP2-FC2048; do
    n=$fc; [ "$net" = FC512-FC512 ] || n=$vgg
    for rep in 1 2 3; do # interleaved, so a load change hits both; table.py takes medians
        load=$(cut -d' ' -f1 /proc/loadavg)
        set -- $(bnas_epoch "$net" "$n" 2 1)
        echo "bnas,$net,2,$n,$1,$load" >> "$speed"
        t=$($py "$here/torch_bnn.py" "$net" --epochs 2 --images "$n" --threads 2 | tail -1 | cut -d, -f5)
        echo "pytorch,$net,2,$n,$t,$load" >> "$speed"
    done
done
echo "impl,network,epochs,images,seed,test_acc" > "$accf"
for seed in 1 2 3; do
    set -- $(bnas_epoch FC512-FC512 $acc_img $acc_ep $seed)
    echo "bnas,FC512-FC512,$acc_ep,$acc_img,$seed,$2" >> "$accf"
    a=$($py "$here/torch_bnn.py" FC512-FC512 --epochs $acc_ep --images $acc_img --seed $seed --threads 2 | tail -1 | cut -d, -f7)
    echo "pytorch,FC512-FC512,$acc_ep,$acc_img,$seed,$(awk -v a="$a" 'BEGIN{printf "%.2f", 100*a}')" >> "$accf"
done
rm -rf "$tmp"
$py "$here/table.py" "$speed" "$accf"
