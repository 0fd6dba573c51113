//go:build !amd64 || purego

package kernels

// kernelSets lists the kernel sets this machine runs, slowest first.
func kernelSets() []*kernelSet { return []*kernelSet{goKernels()} }
