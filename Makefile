# Thin wrapper over the two commands in README.md.
.PHONY: run test build clean
run:
	./scripts/run.sh
test:
	./scripts/test.sh
build:
	./scripts/setup.sh --no-guest
clean:
	rm -rf build build-asan
