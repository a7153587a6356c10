#!/bin/sh
# The cow says the request body: plain text, or the "message" of a JSON object.
if [ "$INPUT_TYPE" = "json" ]; then
  message="$(jq -r '.message' "$INPUT_FILE_PATH")"
else
  message="$(cat "$INPUT_FILE_PATH")"
fi
/usr/games/cowsay "$message"
