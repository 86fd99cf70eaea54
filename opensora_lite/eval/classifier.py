"""A small video classifier of the shapes benchmark, trained on real clips: the feature space of the
Frechet distance between generated and real clips (an FVD for this benchmark).

It never sees generated clips while training, so it judges them as a stranger would.
"""
import logging

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

logger = logging.getLogger(__name__)

FEATURE_DIM = 128


class ShapesClassifier(nn.Module):
    """Clip (N, 3, T, 64, 64) in [-1, 1] -> class logits (N, num_classes); ``features`` -> (N, 128)."""

    def __init__(self, num_classes: int = 12, width: int = 16):
        super().__init__()
        self.config = dict(num_classes=num_classes, width=width)

        def stage(c_in, c_out):  # halve space and time
            return nn.Sequential(nn.Conv3d(c_in, c_out, 3, stride=(2, 2, 2), padding=1), nn.GroupNorm(4, c_out),
                                 nn.SiLU())

        self.body = nn.Sequential(stage(3, width), stage(width, 2 * width), stage(2 * width, 4 * width),
                                  stage(4 * width, FEATURE_DIM))
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        return self.body(video).mean(dim=(2, 3, 4))  # (N, 128)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(video))  # (N, num_classes)


def train_classifier(dataset, num_classes: int, steps: int = 600, batch_size: int = 32, lr: float = 2e-3,
                     seed: int = 0, progress: bool = True) -> ShapesClassifier:
    """Train on a dataset of dict(video, label) items (random flips would change the class: none)."""
    torch.manual_seed(seed)
    model = ShapesClassifier(num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=False)
    step, bar = 0, tqdm(total=steps, desc="train classifier", disable=not progress)
    while step < steps:
        for batch in loader:
            loss = F.cross_entropy(model(batch["video"]), batch["cond"]["y"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step == steps:
                break
    bar.close()
    return model.eval()


@torch.no_grad()
def features_and_predictions(model: ShapesClassifier, videos: torch.Tensor, batch_size: int = 32):
    """(N, 128) features and (N,) predicted classes of clips (N, 3, T, H, W) in [-1, 1]."""
    feats, preds = [], []
    for start in range(0, len(videos), batch_size):
        f = model.features(videos[start:start + batch_size])
        feats.append(f)
        preds.append(model.head(f).argmax(dim=1))
    return torch.cat(feats), torch.cat(preds)
