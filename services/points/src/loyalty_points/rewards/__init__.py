"""The rewards catalog: operators create and change rewards; members see which they may take, and why not."""
