using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("ClawKeeper.Platform.Tests")]
