module hookstream/bench/loadgen

go 1.22
