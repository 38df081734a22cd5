using ClawKeeper.Host.Cli;

return await ClawKeeperCli.RunAsync(args);
