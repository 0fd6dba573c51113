package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/foretoken/foretoken/gguf"
	"github.com/foretoken/foretoken/inference/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var (
		modelPath    string
		addSpecial   bool
		parseSpecial bool
		pieces       bool
		decode       bool
		special      bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize -m MODEL.gguf",
		Short: "Turn stdin into token ids with a model's tokenizer, or ids back into text",
		Long: `tokenize reads all of stdin as one text and prints its token ids on one line,
separated by single spaces, exactly as llama.cpp's tokenizer would produce them.

Only the model's tokenizer metadata is read; the file may hold no tensors.

By default no BOS/EOS is added and the text of special tokens (such as
<|im_start|>) is tokenized as ordinary text. --add-special adds BOS/EOS as the
vocabulary asks (CLS/SEP for WordPiece); --parse-special turns the text of
control tokens in the input into those tokens.

--pieces prints one "id<TAB>piece" line per token instead, the piece being the
bytes the token stands for, Go-quoted so that spaces and partial UTF-8 show.

--decode reads whitespace-separated ids from stdin and prints their text
(control tokens left out unless --special is given).`,
		Example: `  echo -n "Hello world" | foretoken tokenize -m model.gguf
  printf '<|im_start|>user\nhi' | foretoken tokenize -m qwen.gguf --parse-special --pieces
  echo "15043 3186" | foretoken tokenize -m model.gguf --decode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if modelPath == "" {
				return fmt.Errorf("no model: pass -m MODEL.gguf")
			}
			f, err := gguf.Open(modelPath)
			if err != nil {
				return err
			}
			tok, err := tokenizer.FromGGUF(f)
			f.Close()
			if err != nil {
				return err
			}
			in, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if decode {
				ids, err := parseIDs(string(in), tok.VocabSize())
				if err != nil {
					return err
				}
				text := tok.AppendDecode(nil, ids, tokenizer.DecodeOptions{Special: special, StartOfText: true})
				w.Write(text)
				w.WriteByte('\n')
				return w.Flush()
			}
			ids := tok.Encode(string(in), addSpecial, parseSpecial)
			if pieces {
				for _, id := range ids {
					fmt.Fprintf(w, "%d\t%s\n", id, strconv.Quote(string(tok.Piece(id))))
				}
				return w.Flush()
			}
			for i, id := range ids {
				if i > 0 {
					w.WriteByte(' ')
				}
				w.WriteString(strconv.Itoa(int(id)))
			}
			w.WriteByte('\n')
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&modelPath, "model", "m", "", "GGUF file whose tokenizer to use (required)")
	cmd.Flags().BoolVar(&addSpecial, "add-special", false, "add BOS/EOS (CLS/SEP) as the vocabulary asks")
	cmd.Flags().BoolVar(&parseSpecial, "parse-special", false, "turn the text of control tokens into those tokens")
	cmd.Flags().BoolVar(&pieces, "pieces", false, "print one id<TAB>piece line per token")
	cmd.Flags().BoolVar(&decode, "decode", false, "read ids from stdin and print their text")
	cmd.Flags().BoolVar(&special, "special", false, "with --decode: render control tokens as their text")
	return cmd
}

func parseIDs(s string, vocabSize int) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil || v < 0 || int(v) >= vocabSize {
			return nil, fmt.Errorf("bad token id %q: want an integer in [0, %d)", f, vocabSize)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}
