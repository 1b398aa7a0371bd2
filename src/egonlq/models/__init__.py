"""Models of the NLQ baselines."""

from egonlq.models.vslnet import VSLNet, VSLNetConfig, VSLNetLoss, VSLNetOutput, decode_topk

__all__ = ["VSLNet", "VSLNetConfig", "VSLNetLoss", "VSLNetOutput", "decode_topk"]
