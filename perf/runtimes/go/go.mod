module zokio.perf/echo

go 1.19
