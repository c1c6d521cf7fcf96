"""The programme's rules as members may read them."""
