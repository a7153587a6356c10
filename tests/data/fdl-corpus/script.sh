#!/bin/sh
# Corpus script: copy the input file to the output folder.
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
