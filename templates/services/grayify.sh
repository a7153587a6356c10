#!/bin/sh
# Turn the image OSCAR hands over into grayscale; whatever lands in TMP_OUTPUT_DIR is uploaded to the output.
set -e
image_name="$(basename "$INPUT_FILE_PATH")"
echo "grayify: converting ${image_name}"
convert "$INPUT_FILE_PATH" -colorspace Gray "$TMP_OUTPUT_DIR/${image_name}"
