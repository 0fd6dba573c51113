// Command foretoken is a local LLM server and toolkit for GGUF models.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "foretoken",
		Short:         "A local LLM server for GGUF models that shows how the model reaches its words",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each subcommand lives in its own file as newXxxCmd.
	root.AddCommand(
		newServeCmd(),
		newExplainCmd(),
		newScoreCmd(),
		newRunCmd(),
		newInspectCmd(),
		newQuantizeCmd(),
		newTokenizeCmd(),
		newSynthCmd(),
		newBenchCmd(),
	)
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "foretoken:", err)
		os.Exit(1)
	}
}
