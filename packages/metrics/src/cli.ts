#!/usr/bin/env node
import { main } from "./run-cli.js";

process.exitCode = await main(process.argv.slice(2));
