#!/usr/bin/env node
// The CLI lives in dist/ (built by `pnpm build`); this file exists before the build so that
// pnpm can link the bin at install time.
import "../dist/cli.js";
