"""Built-in layer kinds. Importing this package registers them."""
from . import (activation, attention, bidirectional, dense, dropout, embedding, gru, input, lstm,  # noqa: F401
               merge, normalization, one_hot, reshaping, conv, conv2d, leaky_relu, dot, dot_attention,
               mask_ops, masking, pooling, set_mask, compare, logical, reduce_bool, simple_rnn, text_vectorization,
               time_distributed)
