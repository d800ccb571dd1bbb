// composecheck loads a Compose project the way `docker compose config` does, with the Compose
// specification's own loader (github.com/compose-spec/compose-go): schema validation,
// interpolation, merging of override files, consistency checks. It prints the resolved project
// as JSON, or the loader's error and exit status 1. No Docker engine is involved.
//
//	composecheck -f compose.yaml [-f override.yaml] [--env-file .env] [-e KEY=VALUE] [--profile P]
//	composecheck -C DIR [--env-file DIR/.env] ...
//
// Interpolation sees only the env files and -e values (in that order, later wins), not this
// process's environment, so that the result does not depend on who runs it. -C sets the working
// directory (default: the directory of the first -f file). Without -f, the files are those of
// COMPOSE_FILE (from the env files or -e), else DIR's compose.yaml, as docker compose finds them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, envFiles, env, profiles list
	var workdir string
	flag.Var(&files, "f", "compose file (repeatable; later files override earlier ones)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable)")
	flag.Var(&env, "e", "KEY=VALUE for interpolation, after the env files (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.StringVar(&workdir, "C", "", "project working directory (default: the first file's)")
	flag.Parse()
	if (len(files) == 0 && workdir == "") || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if workdir == "" {
		workdir = filepath.Dir(files[0])
	}
	if len(files) == 0 {
		// As docker compose run in DIR: COMPOSE_FILE's paths are relative to it.
		for i, f := range envFiles {
			abs, err := filepath.Abs(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, "composecheck:", err)
				os.Exit(1)
			}
			envFiles[i] = abs
		}
		if err := os.Chdir(workdir); err != nil {
			fmt.Fprintln(os.Stderr, "composecheck:", err)
			os.Exit(1)
		}
		workdir = "."
	}
	if err := run(files, envFiles, env, profiles, workdir); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

func run(files, envFiles, env, profiles []string, workdir string) error {
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(workdir),
		// No implicit .env: only what the caller names.
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithEnv(env),
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	}
	if len(envFiles) == 0 {
		opts = append([]cli.ProjectOptionsFn{func(o *cli.ProjectOptions) error {
			o.EnvFiles = nil
			return nil
		}}, opts...)
	}
	options, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
