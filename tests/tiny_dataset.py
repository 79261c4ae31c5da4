"""A small synthetic dataset in RecBole's atomic format, and settings that train
AnchorMultVAE on it in well under a second per epoch."""
import numpy as np

N_USERS, N_ITEMS, PER_USER = 60, 40, 10

#: AnchorMultVAE settings for the tiny dataset: several batches per epoch.
TINY_MODEL = {
    "mlp_hidden_size": [32],
    "latent_dimension": 8,
    "train_batch_size": 16,
    "total_anneal_steps": 20,
    "anchor_weight": 0.1,
}


def write_tiny_dataset(folder, name="tiny", seed=0):
    """``folder/name/name.inter``: N_USERS users with PER_USER distinct items each."""
    rng = np.random.default_rng(seed)
    path = folder / name
    path.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, N_USERS + 1):
        items = rng.choice(np.arange(1, N_ITEMS + 1), size=PER_USER, replace=False)
        for order, item in enumerate(items):
            lines.append(f"u{user}\ti{item}\t{1 + (user + item) % 5}\t{user * 100 + order}")
    (path / f"{name}.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_args(data_path, epochs=6, **overrides):
    """Command-line ``--key=value`` arguments for AnchorMultVAE on the tiny dataset."""
    settings = {
        "data_path": str(data_path),
        "epochs": epochs,
        "show_progress": False,
        "eval_batch_size": 100000,
        "checkpoint_dir": "saved",
        **TINY_MODEL,
        **overrides,
    }
    return [f"--{key}={value}" for key, value in settings.items()]
