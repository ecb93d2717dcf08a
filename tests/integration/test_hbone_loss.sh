#!/usr/bin/env bash
# Issue 5, acceptance 1 again with 1% packet loss each way (port fault injection).
exec "$(dirname "$0")/test_hbone_l4.sh" --loss 0.01
