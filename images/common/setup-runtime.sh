#!/bin/sh
# Run as root in an image build: tini (the images' PID 1) and the user with uid UID, from the Debian
# or Ubuntu packages when the base lacks them (Jupyter Docker Stacks and the official Node.js
# images have both), then FOLDERs owned by that user.
#
#   setup-runtime.sh UID NAME HOME [FOLDER...]
set -eu
uid=$1 name=$2 home=$3
shift 3
if ! command -v tini >/dev/null; then
    apt-get update
    apt-get install -y --no-install-recommends tini
    rm -rf /var/lib/apt/lists/*
fi
if ! getent passwd "$uid" >/dev/null; then
    useradd --uid "$uid" --user-group --create-home --home-dir "$home" --shell /bin/bash "$name"
fi
for folder in "$@"; do
    install -d -o "$uid" -g "$(id -g "$uid")" "$folder"
done
