package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evento-go/evento/executor"
)

func init() { register(newMigrateCmd) }

func newMigrateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or migrate the store's schema (for stores opened with migrate=false)",
		Long: `migrate creates the store the DSN names if it does not exist, or migrates it to
this program's schema version. It is the only command that creates a store.`,
		Example: `  evento --dsn 'postgres://u:p@db/app?schema=evento' migrate`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := executor.Migrate(cmd.Context(), a.dsn()); err != nil {
				return explainOpen(err)
			}
			fmt.Fprintf(a.stdout, "migrated %s\n", executor.Redact(a.dsn()))
			return nil
		},
	}
}
